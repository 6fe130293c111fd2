"""The one exception type for bad user input: the CLI prints it as one line and exits 2."""


class UserError(ValueError):
    """Bad input (a flag, a config key, a file): the message names it and says what was expected."""
