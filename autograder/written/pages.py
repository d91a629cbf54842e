"""The pages TAs read: one per written question, every answer rendered safely.

Student markdown is hostile input shown in a TA's browser. It is rendered by mistune
with raw HTML escaped (a ``<script>`` or ``<img onerror=...>`` is shown as text), links
kept only for http, https and mailto, images shown as their description (a remote image
would tell its owner when a TA reads the page), and LaTeX turned into MathML here by
latex2mathml, so the page needs no MathJax. Then bleach keeps only an allow-list of
tags and attributes, as a second, independent line; and every page carries a Content
Security Policy that forbids scripts, so a mistake in either would still not run one.
"""

from __future__ import annotations

import html

import bleach
import latex2mathml.converter
import mistune

# What rendered markdown and MathML may contain; anything else is dropped or escaped.
MARKDOWN_TAGS = {"p", "br", "hr", "em", "strong", "del", "code", "pre", "blockquote", "ul",
                 "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead",
                 "tbody", "tr", "th", "td", "span", "div"}
MATHML_TAGS = {"math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msup", "msub",
               "msubsup", "mfrac", "msqrt", "mroot", "mover", "munder", "munderover",
               "mtable", "mtr", "mtd", "mstyle", "mpadded", "mphantom", "menclose",
               "semantics", "annotation"}
ATTRIBUTES = {"a": ["href", "title", "rel"], "math": ["display", "xmlns"],
              "mo": ["stretchy", "fence", "separator", "lspace", "rspace", "form", "largeop",
                     "movablelimits", "symmetric", "accent"],
              "mstyle": ["displaystyle", "scriptlevel", "mathvariant"],
              "mi": ["mathvariant"], "mspace": ["width"], "mfrac": ["linethickness"],
              "mtable": ["columnalign", "rowspacing", "columnspacing"],
              "mover": ["accent"], "munder": ["accentunder"], "menclose": ["notation"],
              "span": ["class"], "div": ["class"], "td": ["align"], "th": ["align"]}
PROTOCOLS = {"http", "https", "mailto"}
# No script, no remote anything: styles are inline, the page loads nothing.
POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


class _SafeRenderer(mistune.HTMLRenderer):
    def __init__(self):
        super().__init__(escape=True)

    def link(self, text: str, url: str, title: str | None = None) -> str:
        if url.split(":", 1)[0].lower() not in PROTOCOLS or ":" not in url:
            return text  # relative, javascript:, data: ... : the text only
        return f'<a href="{self.safe_url(url)}" rel="noreferrer nofollow">{text}</a>'

    def image(self, text: str, url: str, title: str | None = None) -> str:
        return f"[image: {text}]"


def _math(text: str, display: str) -> str:
    try:
        return latex2mathml.converter.convert(text, display=display)
    except Exception:  # not LaTeX it understands: show the source
        return f'<code>{html.escape(text)}</code>'


def render_markdown(text: str) -> str:
    """Safe HTML for markdown (student text, rubric or prompt)."""
    markdown = mistune.create_markdown(renderer=_SafeRenderer(),
                                       plugins=["math", "strikethrough", "table"])
    markdown.renderer.register("inline_math", lambda _, tex: _math(tex, "inline"))
    markdown.renderer.register("block_math", lambda _, tex: _math(tex, "block"))
    rendered = markdown(text)
    return bleach.clean(rendered, tags=MARKDOWN_TAGS | MATHML_TAGS, attributes=ATTRIBUTES,
                        protocols=PROTOCOLS, strip=True, strip_comments=True)


STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; max-width: 52em; margin: 2em auto; padding: 0 1em; }
header, .rubric, .reference { background: #f4f4f4; padding: 0.5em 1em; border-radius: 4px; }
section.answer { border-top: 1px solid #bbb; margin-top: 1.5em; }
section.answer h2 { font-size: 1.05em; }
.empty { color: #a00; font-style: italic; }
pre { white-space: pre-wrap; }
@media print { section.page { break-after: page; } body { margin: 0; max-width: none; } }
"""


def page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">\n'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n"
            f"<body>\n{body}\n</body></html>\n")


def answer_html(text: str) -> str:
    return render_markdown(text) if text.strip() else '<p class="empty">(no answer)</p>'


def question_page(week_title: str, question, answers: list[tuple[str, str]]) -> str:
    """One written question: the prompt, points, rubric and reference at the top, then
    each (label, answer text) in the given order."""
    top = (f"<header><h1>{html.escape(question.question)}: {html.escape(question.title)}</h1>"
           f"<p>{html.escape(week_title)}; {question.points:g} point(s); "
           f"{len(answers)} answer(s)</p>{render_markdown(question.prompt)}</header>\n"
           f'<div class="rubric"><h2>Rubric</h2>{render_markdown(question.rubric)}</div>\n'
           f'<div class="reference"><h2>Reference answer</h2>'
           f"{render_markdown(question.reference)}</div>\n")
    sections = "\n".join(
        f'<section class="answer" id="{html.escape(label)}"><h2>{html.escape(label)}</h2>'
        f"{answer_html(text)}</section>" for label, text in answers)
    return page(f"{question.question}: written answers", top + sections)


def submission_pages(week_title: str, label: str, written, answers: dict[str, str]) -> str:
    """One submission's written answers, a printed page per question in ``written``'s
    order (for Gradescope's page-to-question mapping)."""
    sections = "\n".join(
        f'<section class="page"><h1>{html.escape(label)}: {html.escape(q.question)} '
        f"({html.escape(q.title)})</h1>{render_markdown(q.prompt)}<hr>"
        f"{answer_html(answers.get(q.question, ''))}</section>" for q in written)
    return page(f"{label}: written answers, {week_title}", sections)
