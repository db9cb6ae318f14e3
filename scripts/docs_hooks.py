"""MkDocs hook: the CLI reference page is generated from the typer app at build time."""

from darklens.cli.reference import PLACEHOLDER, cli_reference_markdown


def on_page_markdown(markdown: str, page, config, files) -> str:
    if PLACEHOLDER in markdown:
        return markdown.replace(PLACEHOLDER, cli_reference_markdown())
    return markdown
