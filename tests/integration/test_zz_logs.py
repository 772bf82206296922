"""Runs last (file name): no token sent during the session appears in any Envoy log."""
import time

from tests.integration.harness import ALL_LOGS
from tests.support.tokens import MINTED, make_token


def test_tokens_never_logged(main_envoy):
    # Make sure this test sends a few tokens itself, good and bad, then scan every log.
    main_envoy.get("/api", token=make_token())
    main_envoy.get("/api", token=make_token(claims={"iss": "https://evil.test"}))
    main_envoy.get(f"/query?jwt={make_token(claims={'aud': 'x'})}")
    time.sleep(0.5)  # let Envoy flush its log
    tokens = [t for t in MINTED if len(t) > 40]
    signatures = {t.rsplit(".", 1)[-1] for t in tokens if len(t.rsplit(".", 1)[-1]) >= 20}
    leaks = []
    for path in ALL_LOGS:
        try:
            text = path.read_text(errors="replace")
        except FileNotFoundError:
            continue
        for t in tokens:
            if t in text:
                leaks.append(f"{path}: token {t[:30]}...")
                break
        for s in signatures:
            if s in text:
                leaks.append(f"{path}: signature {s[:20]}...")
                break
    assert not leaks, "\n".join(leaks)
