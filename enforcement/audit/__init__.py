"""The police-lookup audit trail: a hash chain written before each answer; verify and export."""
