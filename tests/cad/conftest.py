from tests.cad.fixtures import (
    cad_client,
    cad_community,
    cad_creds,
    cad_http_session,
    cad_sim,
    make_cad_client,
    make_v2_client,
    v2_client,
)

__all__ = [
    "cad_client",
    "cad_community",
    "cad_creds",
    "cad_http_session",
    "cad_sim",
    "make_cad_client",
    "make_v2_client",
    "v2_client",
]
