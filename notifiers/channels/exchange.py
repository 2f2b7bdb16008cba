"""One message's SMTP transaction — MAIL, RCPT for each mailbox, DATA, the data — on a
connection aiosmtplib opened (and greeted, secured, logged in), written from the replies as
they come.

aiosmtplib sends a command, wakes the sending task on its reply, and the task sends the next:
an event-loop turn and several layers of Python per command, four commands a message at least
(a server without PIPELINING, as aiosmtpd, needs each reply before the next command). Here the
next command is written in the transport's own ``data_received`` callback, and the task waits
once per message, under one timer. For the transaction the transport is handed to
:class:`Exchange` and then back to aiosmtplib's protocol, which is told of a connection lost
meanwhile, so the client knows it is closed.

Replies are read as aiosmtplib reads them (a code, lines joined by ``\\n``); the errors raised
are aiosmtplib's: :class:`~aiosmtplib.SMTPSenderRefused`, :class:`~aiosmtplib.SMTPResponseException`
(a 421 to RCPT: the server is closing), :class:`~aiosmtplib.SMTPRecipientsRefused` (every
mailbox refused), :class:`~aiosmtplib.SMTPDataError`, :class:`~aiosmtplib.SMTPServerDisconnected`,
and ``TimeoutError`` when the whole exchange outlasts its time.
"""
from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import aiosmtplib

MAX_LINE = 8192  # aiosmtplib's limits on a reply line and a whole reply
MAX_REPLY = MAX_LINE * 4
_LINE_ENDINGS = re.compile(rb"\r\n|\n|\r(?!\n)")
_LEADING_PERIOD = re.compile(rb"(?m)^\.")


def payload(message: bytes) -> bytes:
    """What follows DATA: the message with CRLF line ends, each line that begins with a period
    given a second one, and the closing ``.`` line (as aiosmtplib's ``data`` sends it; a message
    made by :func:`~shian.notifiers.channels.email.message_bytes` needs neither change, which
    is checked in three counts rather than two substitutions)."""
    lf = message.count(b"\n")
    if message.count(b"\r\n") != lf or message.count(b"\r") != lf or not message.endswith(b"\r\n"):
        message = _LINE_ENDINGS.sub(b"\r\n", message)
        if not message.endswith(b"\r\n"):
            message += b"\r\n"
    if message.startswith(b".") or b"\n." in message:
        message = _LEADING_PERIOD.sub(b"..", message)
    return message + b".\r\n"


class Exchange(asyncio.Protocol):
    """The transaction of one message on ``client``'s connection (see the module). ``mail``:
    the MAIL command line; ``rcpt``: a RCPT command line per mailbox (``mailboxes``, for the
    errors); ``data``: :func:`payload`. :meth:`run` returns the recipients refused."""

    def __init__(self, client: aiosmtplib.SMTP, mail: bytes, mailboxes: Sequence[str], rcpt: Sequence[bytes],
                 data: bytes, sender: str) -> None:
        self._client = client
        self._own = client.protocol
        self._mail, self._mailboxes, self._rcpt, self._data, self._sender = mail, mailboxes, rcpt, data, sender
        self._buffer = bytearray()
        self._step = 0  # replies read: MAIL's, then one per RCPT, then DATA's, then the data's
        self._refused: list[aiosmtplib.SMTPRecipientRefused] = []
        self._done: asyncio.Future[list[aiosmtplib.SMTPRecipientRefused]] | None = None
        self._transport: asyncio.Transport | None = None

    async def run(self, timeout: float) -> list[aiosmtplib.SMTPRecipientRefused]:
        import aiosmtplib

        own = self._own
        transport = own.transport if own is not None else None
        if transport is None or transport.is_closing():
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        self._transport = transport
        transport.set_protocol(self)
        timer = loop.call_later(timeout, self._fail, TimeoutError())
        try:
            transport.write(self._mail)
            return await self._done
        finally:
            timer.cancel()
            if not transport.is_closing():
                transport.set_protocol(own)

    # -- the transport's callbacks -----------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._done is None or self._done.done():
            return  # nothing was asked (aiosmtplib drops such data too)
        self._buffer += data
        if len(self._buffer) > MAX_REPLY:
            self._fail(self._response_error(-1, "Response too long"))
            return
        while not self._done.done():
            reply = self._reply()
            if reply is None:
                return
            self._answer(*reply)

    def eof_received(self) -> bool:
        import aiosmtplib

        self._fail(aiosmtplib.SMTPServerDisconnected("Unexpected EOF received"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        import aiosmtplib

        lost = aiosmtplib.SMTPServerDisconnected("Connection lost")
        if exc is not None:
            lost.__cause__ = exc
        self._fail(lost)
        if self._own is not None:
            self._own.connection_lost(exc)  # the client learns it is closed

    def pause_writing(self) -> None:
        if self._own is not None:
            self._own.pause_writing()

    def resume_writing(self) -> None:
        if self._own is not None:
            self._own.resume_writing()

    # -- the transaction ---------------------------------------------------------------------

    def _reply(self) -> tuple[int, str] | None:
        """The first complete reply in the buffer, taken out of it (None: not all there yet)."""
        buffer = self._buffer
        end = len(buffer) - 1
        # the common case: the buffer is one whole single-line reply ("250 OK\r\n")
        if 0 < end < MAX_LINE and buffer[end] == 10 and buffer.find(b"\n") == end and buffer[3:4] != b"-":
            try:
                code = int(buffer[:3])
            except ValueError:
                pass  # the general reading below reports it
            else:
                message = bytes(buffer[4:]).strip(b" \t\r\n").decode("utf-8", "surrogateescape")
                buffer.clear()
                return code, message
        offset, message = 0, bytearray()
        while True:
            end = buffer.find(b"\n", offset)
            if end == -1:
                return None
            line = bytes(buffer[offset:end + 1])
            try:
                if len(line) > MAX_LINE:
                    raise ValueError("Response too long")
                code = int(line[:3])
            except ValueError as e:
                text = str(e) if len(line) > MAX_LINE else \
                    "Malformed SMTP response line: " + line.decode("utf-8", errors="ignore")
                self._fail(self._response_error(-1, text))
                return None
            offset = end + 1
            if message:
                message += b"\n"
            message += line[4:].strip(b" \t\r\n")
            if line[3:4] != b"-":
                del buffer[:offset]
                return code, bytes(message).decode("utf-8", "surrogateescape")

    def _answer(self, code: int, message: str) -> None:
        """The next command for this reply, or the end of the transaction."""
        import aiosmtplib

        step, n = self._step, len(self._rcpt)
        self._step += 1
        if step == 0:
            if code != 250:
                self._fail(aiosmtplib.SMTPSenderRefused(code, message, self._sender))
            else:
                self._write(self._rcpt[0])
        elif step <= n:
            if code == 421:  # the server is closing the connection
                self._fail(aiosmtplib.SMTPResponseException(code, message))
                return
            if code not in (250, 251):
                self._refused.append(aiosmtplib.SMTPRecipientRefused(code, message, self._mailboxes[step - 1]))
            if step < n:
                self._write(self._rcpt[step])
            elif len(self._refused) == n:
                self._fail(aiosmtplib.SMTPRecipientsRefused(self._refused))
            else:
                self._write(b"DATA\r\n")
        elif step == n + 1:
            if code != 354:
                self._fail(aiosmtplib.SMTPDataError(code, message))
            else:
                self._write(self._data)
        elif code != 250:
            self._fail(aiosmtplib.SMTPDataError(code, message))
        elif self._done is not None and not self._done.done():
            self._done.set_result(self._refused)

    def _write(self, line: bytes) -> None:
        assert self._transport is not None
        self._transport.write(line)

    def _fail(self, exc: BaseException) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(exc)

    @staticmethod
    def _response_error(code: int, message: str) -> aiosmtplib.SMTPResponseException:
        import aiosmtplib

        return aiosmtplib.SMTPResponseException(code, message)
