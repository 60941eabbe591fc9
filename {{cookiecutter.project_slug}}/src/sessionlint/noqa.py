"""``# noqa`` comments: read them with tokenize and apply the reason-required policy."""

import dataclasses
import io
import re
import tokenize
from collections.abc import Callable
from dataclasses import dataclass

from sessionlint.codes import UNSUPPRESSIBLE
from sessionlint.events import Event, Status

_NOQA_RE = re.compile(
    r"#\s*(?i:noqa)\b(?:\s*:\s*(?P<codes>[A-Z]+[0-9]+(?:\s*[,\s]\s*[A-Z]+[0-9]+)*))?(?P<rest>[^#]*)"
)
_CODE_RE = re.compile(r"[A-Z]+[0-9]+")
_REASON_STRIP = " \t-:;,.\u2013\u2014"


@dataclass(frozen=True, slots=True)
class Noqa:
    """One ``# noqa`` comment: its position, sessionlint codes and free-text reason."""

    line: int
    col: int
    codes: frozenset[str]
    reason: str
    bare: bool


def parse_noqa_comments(source: bytes) -> dict[int, Noqa]:
    """Return the ``# noqa`` comments of a module keyed by line number."""
    found: dict[int, Noqa] = {}
    try:
        for token in tokenize.tokenize(io.BytesIO(source).readline):
            if token.type != tokenize.COMMENT:
                continue
            match = _NOQA_RE.search(token.string)
            if match is None:
                continue
            codes_text = match.group("codes")
            codes = frozenset(_CODE_RE.findall(codes_text)) if codes_text else frozenset()
            line, col = token.start
            found[line] = Noqa(
                line=line,
                col=col + match.start() + 1,
                codes=frozenset(code for code in codes if code.startswith("SL")),
                reason=match.group("rest").strip(_REASON_STRIP),
                bare=codes_text is None,
            )
    except (tokenize.TokenError, SyntaxError):
        return found
    return found


def apply_noqa(
    events: list[Event],
    comments: dict[int, Noqa],
    make_sl008: Callable[[Noqa, str], Event],
) -> list[Event]:
    """Suppress reasoned ``# noqa: SLnnn`` findings and add SL008 for unreasoned ones."""
    if not comments:
        return events
    result: list[Event] = []
    flagged_lines: set[int] = set()
    for event in events:
        noqa = comments.get(event.line)
        if noqa is None or not event.is_finding or event.code in UNSUPPRESSIBLE:
            result.append(event)
            continue
        flagged_lines.add(event.line)
        if event.code in noqa.codes and noqa.reason:
            result.append(
                dataclasses.replace(
                    event,
                    status=Status.REVIEW,
                    message=f"suppressed ({noqa.reason}): {event.message}",
                )
            )
        else:
            result.append(event)
    for noqa in comments.values():
        if noqa.codes and not noqa.reason:
            codes = ", ".join(sorted(noqa.codes))
            result.append(make_sl008(noqa, f"`# noqa: {codes}` without a reason"))
        elif noqa.bare and noqa.line in flagged_lines:
            result.append(make_sl008(noqa, "bare `# noqa` on a line with a sessionlint finding"))
    return result
