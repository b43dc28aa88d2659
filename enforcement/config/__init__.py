"""The city's configuration: the file's sections (`spec`), the values written as text in it
(`values`), the `Settings` built from it (`settings`), and loading with its errors (`load`)."""
