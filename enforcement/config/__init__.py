"""The city's configuration: the file's sections (`spec`), the values written as text in it
(`values`), loading with its errors (`load`), who may call (`access`), and the `Settings`
built from it (`settings`)."""
