"""Run Telix (the real client from PyPI, in its own venv: ``.venv-telix/bin/python
tests/telix_driver.py URL [telix options]``) as its ``telix`` command does, with one
work-around: Telix 0.1.10's telnet-over-WebSocket shell reads a config that only its
direct telnet path sets (``client_shell.pending_config``: AttributeError on ``no_repl``);
here the WebSocket path sets it too. Nothing else of Telix is changed."""

import sys

import telix.client_shell
import telix.main
import telix.ws_client

_run_ws_client = telix.ws_client.run_ws_client


async def run_ws_client(*args, **kwargs):
    telix.client_shell.pending_config = kwargs.get("color_args")
    return await _run_ws_client(*args, **kwargs)


telix.ws_client.run_ws_client = run_ws_client

if __name__ == "__main__":
    sys.argv = ["telix", *sys.argv[1:]]
    sys.exit(telix.main.main())
