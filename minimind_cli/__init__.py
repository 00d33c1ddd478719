"""The ``minimind`` command line: a Typer app and a Textual dashboard. Imports torch only lazily."""
