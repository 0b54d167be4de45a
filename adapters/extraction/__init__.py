"""Text extraction: one small module per format, behind the `Extractor` port.

`dispatcher.FileExtractor` picks the module by the sniffed MIME type. Pure-Python formats
(plain text, Markdown, CSV, VTT/SRT) run in the calling process on a bounded read; native
parsers and external programs (HTML via Lexbor, DOCX via lxml, PDF via PDFium, Tesseract and
pdftoppm) run in a child process under a memory limit and a watchdog (`isolation`), so a hostile
file kills the child, never the server. See docs/decisions/0021-text-extraction.md.
"""
