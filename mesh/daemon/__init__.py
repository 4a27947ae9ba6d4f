"""The daemon side: real I/O (SQLite, sockets, trio) around the sans-I/O core."""
