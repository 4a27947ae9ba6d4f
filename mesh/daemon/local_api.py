"""The daemon's local API server: the Unix socket the ``steppe`` commands and the TUI use.

Theory of operation
-------------------
The socket (``daemon.sock``, mode 0600) is created in the profile's runtime directory when
the daemon starts and removed when it stops. Each client that connects gets two tasks:

- a *reader* that cuts requests out of the stream (:class:`mesh.ipc.FrameReader`), checks
  each against the operation table (:func:`mesh.ipc.parse_request`: types, lengths and
  ranges, giving a typed request) and only then hands it to the daemon's operations
  (:meth:`mesh.daemon.ops.Ops.handle`), whose typed result travels as plain maps;
- the one *writer* of that socket, fed by a bounded queue of encoded frames. Replies wait
  for room in the queue (a client that does not read stops being served, nobody else);
  events (after ``subscribe``) never wait: a subscriber whose queue is full is too slow
  and is disconnected rather than silently missing events.

Whatever a client does - garbage, a frame of the wrong shape, hanging up in the middle,
never reading - ends that client's connection at most: the error stays inside its task and
is counted in ``status`` (``ipc_*`` counters).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from mesh import ipc
from mesh.ipc.events import Event, event_map
from mesh.ipc.protocol import Answer, Failure, Reply, answer_map
from mesh.ipc.schema import dump

if TYPE_CHECKING:
    from mesh.daemon.daemon import Daemon

log = logging.getLogger(__name__)

QUEUE = 256  # frames waiting for one client's writer (replies and events)
DRAIN_TIMEOUT = 5.0  # seconds a client that stopped sending has to read its last replies
BACKLOG = 16


class _Client:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.out, self.out_recv = trio.open_memory_channel[bytes](QUEUE)
        self.scope = trio.CancelScope()


class LocalApi:
    """Serves :mod:`mesh.ipc` requests for one daemon; :meth:`publish` sends an event to
    every subscriber."""

    def __init__(self, daemon: Daemon, runtime_dir: Path) -> None:
        self.daemon = daemon
        self.stats = daemon.stats  # shown by ``status``
        self.path = ipc.socket_path(runtime_dir)
        self._subscribers: list[_Client] = []

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path.unlink(missing_ok=True)
        sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
        old = os.umask(0o177)  # the socket is created 0600: only the owner may connect
        try:
            await sock.bind(str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        sock.listen(BACKLOG)
        task_status.started()
        try:
            await trio.serve_listeners(self._serve_client, [trio.SocketListener(sock)])
        finally:
            self.path.unlink(missing_ok=True)

    @property
    def subscribed(self) -> bool:
        return bool(self._subscribers)

    def publish(self, event: Event) -> None:
        if not self._subscribers:
            return
        frame = ipc.encode_frame(event_map(event))
        for client in list(self._subscribers):
            try:
                client.out.send_nowait(frame)
            except trio.WouldBlock:
                self._count("ipc_slow_subscribers_dropped")
                self._forget(client)
                client.scope.cancel()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._forget(client)

    def _count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1

    def _forget(self, client: _Client) -> None:
        if client in self._subscribers:
            self._subscribers.remove(client)

    async def _serve_client(self, stream: trio.SocketStream) -> None:
        client = _Client(stream)
        try:
            with client.scope:
                async with stream, trio.open_nursery() as nursery:
                    nursery.start_soon(self._writer, client)
                    await self._reader(client)
                    # The client sent all it will send: the writer sends what is queued
                    # and ends, unless the client does not read it in time.
                    self._forget(client)
                    client.out.close()
                    client.scope.deadline = trio.current_time() + DRAIN_TIMEOUT
        except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass  # the client hung up; nothing of anyone else's is affected
        except* Exception:  # a bug must not take the daemon down with one client
            self._count("ipc_internal_errors")
            log.exception("local API client: internal error; connection closed")
        finally:
            self._forget(client)

    async def _reader(self, client: _Client) -> None:
        reader = ipc.FrameReader()
        while True:
            data = await client.stream.receive_some(65536)
            if not data:
                return
            try:
                requests = reader.feed(data)
            except ipc.IpcError as exc:
                self._count("ipc_protocol_errors")
                log.info("a local API client broke the protocol: %s", exc)
                await client.out.send(_encode(Failure(0, str(exc))))
                return
            for obj in requests:
                await client.out.send(_encode(self._call(obj, client)))

    async def _writer(self, client: _Client) -> None:
        """The only task that writes to this client's socket."""
        async for frame in client.out_recv:
            batch = [frame]
            while len(batch) < 64:
                try:
                    batch.append(client.out_recv.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            await client.stream.send_all(b"".join(batch))

    def _call(self, obj: dict[str, Any], client: _Client) -> Answer:
        given = obj.get("id")
        req_id = given if type(given) is int else 0
        try:
            req = ipc.parse_request(obj)
            result = self.daemon.ops.handle(req.call, lambda: self._subscribe(client))
            return Reply(req_id, dump(result))
        except ipc.IpcError as exc:
            return Failure(req_id, str(exc))
        except Exception:  # a bug must not take the node down with the client's request
            self._count("ipc_internal_errors")
            op = obj.get("op")
            log.exception("local API request %r failed", op if op in ipc.OPS else "?")
            return Failure(req_id, "internal error (see the daemon log)")

    def _subscribe(self, client: _Client) -> None:
        if client not in self._subscribers:
            self._subscribers.append(client)


def _encode(answer: Answer) -> bytes:
    try:
        return ipc.encode_frame(answer_map(answer))
    except ipc.IpcError as exc:  # an answer too large for one frame
        return ipc.encode_frame(answer_map(Failure(answer.id, f"{exc}; ask for less")))
