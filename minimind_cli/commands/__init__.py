"""One module per command. Each exposes ``HELP`` and the command function; bodies delegate to
the core library and import it lazily."""
