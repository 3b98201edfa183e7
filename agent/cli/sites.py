"""`forethought sites serve`: the local WebArena-style sites, to browse them by hand."""
from __future__ import annotations

import argparse

from envs.sites.server import serve_sites


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="sites_command", required=True)
    serve = actions.add_parser("serve", help="serve the local sites to browse them by hand (Ctrl-C or SIGTERM "
                                             "stops them and removes their working copies)")
    serve.add_argument("--site", choices=["shop", "forum", "gitlab"], help="one site (default: all)")
    serve.add_argument("--port", type=int, metavar="PORT",
                       help="serve the sites on PORT, PORT+1, ... (default: free ports)")
    serve.set_defaults(handler=serve_command)


def serve_command(args: argparse.Namespace) -> int:
    serve_sites([args.site] if args.site else None, args.port)  # blocks until Ctrl-C or SIGTERM
    return 0
