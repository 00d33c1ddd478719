"""minimind: pretrain a small MiniMind-style language model on your own text.

The core library. It never imports ``minimind_cli``, typer or textual; importing this
package is cheap (torch is only loaded by the modules that need it).
"""

__version__ = "0.1.0"
