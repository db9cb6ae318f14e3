"""``python -m darklens``: the same CLI as the ``darklens`` command."""

from darklens.cli import app

app()
