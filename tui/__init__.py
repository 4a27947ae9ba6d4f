"""The terminal UI (Textual): ``steppe`` with no subcommand. A separate process that talks
to the profile's daemon over the local API (:mod:`mesh.ipc.asyncio_client`), so a UI
crash loses nothing and a relay runs without it.

- :mod:`tui.app`: the :class:`~tui.app.SteppeApp` (layout in ``steppe.tcss``);
- :mod:`tui.daemon_link`: the two connections to the daemon (requests; events), and
  reconnecting when it goes away;
- :mod:`tui.messages`: the app-wide messages;
- :mod:`tui.widgets`: the conversation list, the conversation, the compose box;
- :mod:`tui.text`: every string from the mesh becomes an inert ``rich.text.Text``
  (:func:`mesh.render.inert`, the CLI's rules), never markup.
"""
