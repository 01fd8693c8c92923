"""The object that owns the draft being composed; the form and table only display it.

Every edit goes through a method here, which replaces the immutable core
:class:`~netcore_desktop.core.message.Draft` and emits :attr:`ComposeController.draft_changed`.
Views listen and redraw; nothing else keeps a copy of the fields. That keeps the preview,
the checks, autosave and the request in agreement: they all read the same draft.

How the To field and the test-recipients table relate: every address in To is one envelope
(one row of the table, one personalised message). Cc is copied into every envelope; Bcc is
the message-level "global Bcc" of the API.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Final

from PySide6.QtCore import QObject, Signal

from netcore_desktop.core.contract import ATTACHMENT_MAX_BYTES, PLACEHOLDER_RE
from netcore_desktop.core.message import (
    Address,
    Attachment,
    BodyFormat,
    Draft,
    Envelope,
    TrackingSettings,
)
from netcore_desktop.ui.addresses import ParsedAddress, parse_address_list
from netcore_desktop.ui.qt_compat import emit

log = logging.getLogger(__name__)

#: The tracking switches, in the order the form shows them.
TRACKING_KEYS: Final = ("open_track", "click_track", "unsubscribe_track", "footer")


def find_placeholders(*texts: str) -> list[str]:
    """Placeholder keys in ``texts`` in order of first use (as ``core.render`` finds them).

    Kept here so the form does not load the Markdown renderer before the window shows.
    """
    seen: dict[str, None] = {}
    for text in texts:
        for match in PLACEHOLDER_RE.finditer(text):
            seen.setdefault(match.group(1), None)
    return list(seen)


class ComposeController(QObject):
    """Owns the :class:`Draft`; every form edit is a method call here."""

    #: Any edit; carries the new :class:`Draft`.
    draft_changed = Signal(object)
    #: A whole new draft was loaded (new, opened, restored): views reload every field.
    draft_replaced = Signal(object)
    #: The problems found while parsing an address field: (field name, list of ParsedAddress).
    addresses_parsed = Signal(str, list)
    #: The test recipient shown in the preview changed.
    selection_changed = Signal(int)
    #: "Allow remote images for this draft" was switched.
    remote_images_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._draft = Draft()
        self._selected = 0
        self._allow_remote = False
        self._path: Path | None = None
        self._parsed: dict[str, list[ParsedAddress]] = {"to": [], "cc": [], "bcc": []}
        # The Cc field's addresses. Cc is stored in every envelope, but there may be no
        # envelope yet (Cc typed before To, or To cleared and typed again): kept here, it
        # goes into every envelope made later.
        self._cc: tuple[Address, ...] = ()

    # --- reading ------------------------------------------------------------------------

    @property
    def draft(self) -> Draft:
        """The draft as it stands now."""
        return self._draft

    @property
    def cc(self) -> tuple[Address, ...]:
        """The Cc field's addresses (also when there is no recipient row to hold them yet)."""
        return self._cc

    def draft_to_keep(self) -> Draft:
        """The draft as it is written to a file or the autosave, with nothing left out.

        With no recipient yet, a Cc has no envelope to live in: it is kept in one envelope
        with no To, which :meth:`load` turns back into the Cc field.
        """
        if self._cc and not self._draft.envelopes:
            return replace(self._draft, envelopes=(Envelope(to=(), cc=self._cc),))
        return self._draft

    @property
    def selected_envelope(self) -> int:
        """Index of the test recipient the preview shows (0 when there are none)."""
        return self._selected

    @property
    def allow_remote_images(self) -> bool:
        """Whether the preview may load remote images for this draft."""
        return self._allow_remote

    @property
    def path(self) -> Path | None:
        """The draft file this draft was opened from or saved to, if any."""
        return self._path

    def parsed(self, field: str) -> list[ParsedAddress]:
        """The last parse of the ``to``/``cc``/``bcc`` field."""
        return list(self._parsed.get(field, []))

    def attribute_columns(self) -> list[str]:
        """Attribute keys the recipients table shows: placeholders in use, then extra keys."""
        d = self._draft
        keys = find_placeholders(d.subject, d.body, d.amp)
        seen = set(keys)
        for env in d.envelopes:
            for key in env.attributes:
                if key not in seen:
                    seen.add(key)
                    keys.append(key)
        return keys

    def used_placeholders(self) -> list[str]:
        """Placeholder keys written in subject, body or AMP part."""
        d = self._draft
        return find_placeholders(d.subject, d.body, d.amp)

    # --- whole drafts -------------------------------------------------------------------

    def load(self, draft: Draft, path: Path | None = None) -> None:
        """Replace the whole draft (new, opened from a file, restored after a crash)."""
        if len(draft.envelopes) == 1 and not draft.envelopes[0].to:
            # A Cc kept with no recipient yet (draft_to_keep): the Cc field, no row.
            self._cc = draft.envelopes[0].cc
            draft = replace(draft, envelopes=())
        else:
            self._cc = draft.envelopes[0].cc if draft.envelopes else ()
        self._draft = draft
        self._path = path
        self._selected = 0
        self._allow_remote = False
        self._parsed = {"to": [], "cc": [], "bcc": []}
        # Remote images first: the preview of the new draft must already be blocked.
        emit(self.remote_images_changed, False)
        emit(self.draft_replaced, draft)
        emit(self.draft_changed, draft)
        emit(self.selection_changed, 0)

    def set_path(self, path: Path | None) -> None:
        """Remember the file the draft was saved to."""
        self._path = path

    def _set(self, draft: Draft) -> None:
        if draft == self._draft:
            return
        self._draft = draft
        if self._selected >= max(1, len(draft.envelopes)):
            self._selected = max(0, len(draft.envelopes) - 1)
            emit(self.selection_changed, self._selected)
        emit(self.draft_changed, draft)

    # --- header fields ------------------------------------------------------------------

    def set_sender_email(self, email: str) -> None:
        """The From address."""
        self._set(replace(self._draft, sender=Address(email.strip(), self._draft.sender.name)))

    def set_sender_name(self, name: str) -> None:
        """The From display name."""
        self._set(replace(self._draft, sender=Address(self._draft.sender.email, name.strip())))

    def set_to_text(self, text: str) -> list[ParsedAddress]:
        """Parse the To field: each address becomes one envelope (one table row).

        Rows whose address is still in the list keep their values; the others are reused
        in order, so fixing a typo in an address keeps that recipient's values.
        """
        parsed = parse_address_list(text)
        self._parsed["to"] = parsed
        old = list(self._draft.envelopes)
        used = [False] * len(old)
        chosen: list[Envelope | None] = [None] * len(parsed)
        index_by_email: dict[str, int] = {}
        for i, env in enumerate(old):
            key = env.to[0].email.lower() if env.to else ""
            index_by_email.setdefault(key, i)
        for j, item in enumerate(parsed):
            match = index_by_email.get(item.address.email.lower())
            if match is not None and not used[match]:
                used[match] = True
                chosen[j] = old[match]
        spare = iter(i for i in range(len(old)) if not used[i])
        cc = self._cc
        envelopes: list[Envelope] = []
        for j, item in enumerate(parsed):
            found = chosen[j]
            if found is None:
                reuse = next(spare, None)
                found = old[reuse] if reuse is not None else Envelope(to=(), cc=cc)
            envelopes.append(replace(found, to=(item.address,)))
        self._set(replace(self._draft, envelopes=tuple(envelopes)))
        emit(self.addresses_parsed, "to", parsed)
        return parsed

    def set_cc_text(self, text: str) -> list[ParsedAddress]:
        """Parse the Cc field; the same Cc goes into every envelope."""
        parsed = parse_address_list(text)
        self._parsed["cc"] = parsed
        cc = tuple(p.address for p in parsed)
        changed = cc != self._cc
        self._cc = cc
        envelopes = tuple(replace(e, cc=cc) for e in self._draft.envelopes)
        if envelopes or not changed:
            self._set(replace(self._draft, envelopes=envelopes))
        else:
            # No recipient row holds it yet, so the draft itself is unchanged: say so anyway,
            # for the autosave and the window title.
            emit(self.draft_changed, self._draft)
        emit(self.addresses_parsed, "cc", parsed)
        return parsed

    def set_bcc_text(self, text: str) -> list[ParsedAddress]:
        """Parse the Bcc field (the message-level Bcc, copied to every envelope by Netcore)."""
        parsed = parse_address_list(text)
        self._parsed["bcc"] = parsed
        self._set(replace(self._draft, bcc=tuple(p.address for p in parsed)))
        emit(self.addresses_parsed, "bcc", parsed)
        return parsed

    def set_reply_to(self, text: str) -> None:
        """The Reply-To address."""
        self._set(replace(self._draft, reply_to=text.strip()))

    def set_subject(self, text: str) -> None:
        """The subject line (may hold placeholders)."""
        self._set(replace(self._draft, subject=text))

    def set_body(self, text: str) -> None:
        """The body source, Markdown or HTML."""
        self._set(replace(self._draft, body=text))

    def set_body_format(self, fmt: BodyFormat) -> None:
        """Whether the body is Markdown or HTML."""
        self._set(replace(self._draft, body_format=fmt))

    def set_amp(self, text: str) -> None:
        """The optional AMP part (empty for none)."""
        self._set(replace(self._draft, amp=text))

    # --- attachments --------------------------------------------------------------------

    def add_attachment_files(self, paths: list[Path]) -> list[str]:
        """Attach files; returns a sentence for each file that could not be attached."""
        errors: list[str] = []
        added: list[Attachment] = []
        for path in paths:
            try:
                size = path.stat().st_size
                if size > ATTACHMENT_MAX_BYTES:
                    errors.append(
                        self.tr("{name} is larger than 25 MB and cannot be attached.").format(
                            name=path.name
                        )
                    )
                    continue
                added.append(Attachment(path.name, path.read_bytes()))
            except OSError as exc:
                errors.append(
                    self.tr("{name} could not be read: {error}").format(
                        name=path.name, error=exc.strerror or str(exc)
                    )
                )
        if added:
            self._set(replace(self._draft, attachments=self._draft.attachments + tuple(added)))
        return errors

    def remove_attachment(self, index: int) -> None:
        """Remove the attachment at ``index``."""
        items = list(self._draft.attachments)
        if 0 <= index < len(items):
            del items[index]
            self._set(replace(self._draft, attachments=tuple(items)))

    # --- options ------------------------------------------------------------------------

    def set_tags_text(self, text: str) -> None:
        """Tags, comma separated."""
        tags = tuple(t.strip() for t in text.split(",") if t.strip())
        self._set(replace(self._draft, tags=tags))

    def set_tracking(self, key: str, value: bool | None) -> None:
        """One tracking switch; ``None`` leaves it at the account's default."""
        if key not in TRACKING_KEYS:
            raise ValueError(key)
        current = self._draft.settings
        values = {k: getattr(current, k) for k in TRACKING_KEYS}
        values[key] = value
        settings = TrackingSettings(
            open_track=values["open_track"],
            click_track=values["click_track"],
            unsubscribe_track=values["unsubscribe_track"],
            footer=values["footer"],
            ippool=current.ippool,
        )
        self._set(replace(self._draft, settings=settings))

    def set_ippool(self, text: str) -> None:
        """The dedicated IP pool name (empty for the default)."""
        self._set(replace(self._draft, settings=replace(self._draft.settings, ippool=text.strip())))

    def set_priority(self, value: int | None) -> None:
        """``priorityflag`` 1, 2 or 3, or ``None``."""
        self._set(replace(self._draft, priority=value))

    def set_schedule(self, epoch: int) -> None:
        """Unix seconds to deliver at; 0 sends now."""
        self._set(replace(self._draft, schedule=max(0, int(epoch))))

    def set_template_id(self, value: int | None) -> None:
        """A stored template's id, or ``None``."""
        self._set(replace(self._draft, template_id=value))

    # --- the test-recipients table ------------------------------------------------------

    def add_envelope(self) -> int:
        """Add an empty recipient row; returns its index."""
        env = Envelope(to=(Address(""),), cc=self._cc)
        self._set(replace(self._draft, envelopes=(*self._draft.envelopes, env)))
        return len(self._draft.envelopes) - 1

    def remove_envelope(self, index: int) -> None:
        """Remove the recipient row at ``index``."""
        items = list(self._draft.envelopes)
        if 0 <= index < len(items):
            del items[index]
            self._set(replace(self._draft, envelopes=tuple(items)))

    def set_envelope_email(self, index: int, email: str) -> None:
        """The To address of row ``index`` (its name is kept)."""
        self._edit_envelope_to(index, email=email.strip())

    def set_envelope_name(self, index: int, name: str) -> None:
        """The To display name of row ``index``."""
        self._edit_envelope_to(index, name=name.strip())

    def _edit_envelope_to(
        self, index: int, *, email: str | None = None, name: str | None = None
    ) -> None:
        items = list(self._draft.envelopes)
        if not 0 <= index < len(items):
            return
        env = items[index]
        first = env.to[0] if env.to else Address("")
        first = Address(
            first.email if email is None else email, first.name if name is None else name
        )
        items[index] = replace(env, to=(first, *env.to[1:]))
        self._set(replace(self._draft, envelopes=tuple(items)))

    def set_attribute(self, index: int, key: str, value: str) -> None:
        """The value of placeholder ``key`` for row ``index``."""
        items = list(self._draft.envelopes)
        if not 0 <= index < len(items):
            return
        attributes = dict(items[index].attributes)
        attributes[key] = value
        items[index] = replace(items[index], attributes=attributes)
        self._set(replace(self._draft, envelopes=tuple(items)))

    def select_envelope(self, index: int) -> None:
        """Show test recipient ``index`` in the preview."""
        index = min(max(index, 0), max(0, len(self._draft.envelopes) - 1))
        if index != self._selected:
            self._selected = index
            emit(self.selection_changed, index)

    def set_allow_remote_images(self, allowed: bool) -> None:
        """Let the preview load remote images for this draft only."""
        if allowed != self._allow_remote:
            self._allow_remote = allowed
            emit(self.remote_images_changed, allowed)

    def apply_sender_defaults(self, email: str, name: str, reply_to: str) -> None:
        """Fill From (and Reply-To) from the profile when the draft has none."""
        d = self._draft
        sender = d.sender
        if not sender.email and email:
            sender = Address(email, sender.name or name)
        new = replace(d, sender=sender, reply_to=d.reply_to or reply_to)
        if new != d:
            self._draft = new
            emit(self.draft_replaced, new)
            emit(self.draft_changed, new)
