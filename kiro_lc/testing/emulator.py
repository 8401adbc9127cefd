"""``KiroEmulator``: a wire-faithful Kiro on loopback, for tests and offline demos.

One stdlib ``ThreadingHTTPServer`` on ``127.0.0.1`` (ephemeral port by default) serves the API
(both wire styles), the Kiro desktop refresh endpoint and the SSO OIDC token endpoint::

    from kiro_lc.testing import KiroEmulator, Reply, Fault

    with KiroEmulator() as emu:
        emu.script(Reply.text("Hello"), Fault.http(429, retry_after=1))
        os.environ.update(emu.env())          # KIRO_API_URL, KIRO_API_KEY, ...
        ...                                   # run kiro-lc against it
        assert emu.requests[0].problems == []
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from kiro_lc.testing.accounts import EmulatorAccount
from kiro_lc.testing.server import EmulatorHTTPServer
from kiro_lc.testing.service import KiroService

REGION = "us-east-1"


class KiroEmulator(KiroService):
    """A local Kiro: real sockets, real event-stream frames, strict request validation.

    Options: ``host``/``port`` to listen on; ``strict`` (reject invalid requests with Kiro's 400
    bodies; ``False`` only records the problems); ``models`` extra catalogue ids or entries;
    ``disabled_models`` (answered 429 ``INSUFFICIENT_MODEL_CAPACITY``); ``max_request_bytes``;
    ``latency`` seconds before the first byte of every GenerateAssistantResponse answer;
    ``split_frames`` the probability that a frame is split across two HTTP chunks, drawn from a
    RNG seeded by ``seed`` and the request number; ``require_profile_arn`` (accounts with a
    profile must send it); ``api_key`` to fix the default account's key.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        strict: bool = True,
        models: Iterable[str | Mapping[str, Any]] = (),
        disabled_models: Iterable[str] = (),
        max_request_bytes: int = 600_000,
        latency: float = 0.0,
        split_frames: float = 0.25,
        seed: int = 0,
        require_profile_arn: bool = False,
        api_key: str | None = None,
    ) -> None:
        super().__init__(
            strict=strict,
            models=models,
            disabled_models=disabled_models,
            max_request_bytes=max_request_bytes,
            latency=latency,
            require_profile_arn=require_profile_arn,
            api_key=api_key,
        )
        self.host = host
        self.port = port
        self.split_frames = split_frames
        self.seed = seed
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._life_lock = threading.Lock()

    def __repr__(self) -> str:
        where = self.base_url if self.running else "stopped"
        return f"KiroEmulator({where}, strict={self.strict})"

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._server is not None

    def start(self) -> KiroEmulator:
        """Start listening in a daemon thread (no-op when already running); returns ``self``."""
        with self._life_lock:
            if self._server is not None:
                return self
            server = EmulatorHTTPServer(
                (self.host, self.port), self, split_frames=self.split_frames, seed=self.seed
            )
            self.port = server.server_address[1]
            self._server = server
            self._accounts.set_token_endpoint_base(self.base_url)
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.02},
                name=f"KiroEmulator:{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop every open connection; safe to call twice, never hangs."""
        with self._life_lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=2.0)

    def close(self) -> None:
        """Same as :meth:`stop`."""
        self.stop()

    def __enter__(self) -> KiroEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` of the API (both wire styles)."""
        if self._server is None:
            raise RuntimeError("the KiroEmulator is not running: call start() or use 'with'")
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.port}"

    @property
    def auth_url(self) -> str:
        """Base URL of the Kiro desktop auth service (``POST /refreshToken``)."""
        return self.base_url

    @property
    def oidc_url(self) -> str:
        """Base URL of the SSO OIDC service (``POST /token``)."""
        return self.base_url

    def env(self, account: EmulatorAccount | str | None = None) -> dict[str, str]:
        """``KIRO_*`` variables that point kiro-lc at this emulator.

        By default they carry the default account's API key. With ``account``, they carry a
        freshly minted ``KIRO_ACCESS_TOKEN`` (plus ``KIRO_PROFILE_ARN`` when it has one) instead.
        """
        variables = {
            "KIRO_API_URL": self.base_url,
            "KIRO_AUTH_URL": self.auth_url,
            "KIRO_OIDC_URL": self.oidc_url,
            "KIRO_REGION": REGION,
        }
        acct = (
            None
            if account is None
            else self.account(account if isinstance(account, str) else account.name)
        )
        if acct is None or acct.kind == "api_key":
            key = self.api_key if acct is None else self.api_key_of(acct)
            variables["KIRO_API_KEY"] = key
        else:
            variables["KIRO_ACCESS_TOKEN"] = self.issue_access_token(acct)
            if acct.profile_arn:
                variables["KIRO_PROFILE_ARN"] = acct.profile_arn
        return variables
