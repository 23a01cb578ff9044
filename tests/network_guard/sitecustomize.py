"""Loaded by every Python process whose PYTHONPATH starts here (tests/test_ibm.py): any attempt to
reach the network is written to $QATTN_NETWORK_LOG and refused."""

import os
import socket


def refuse(*args, **kwargs):
    with open(os.environ["QATTN_NETWORK_LOG"], "a") as log:
        log.write(f"{args[1:] if args and isinstance(args[0], socket.socket) else args}\n")
    raise OSError("network access refused by the test's network guard")


if os.environ.get("QATTN_NETWORK_LOG"):
    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.getaddrinfo = refuse
    socket.create_connection = refuse
