"""The one way every gsf process connects to Temporal, and the search attributes it relies on."""

from __future__ import annotations

from temporalio.client import Client, TLSConfig
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter

from core import tracing
from core.settings import Settings

SA_SERVER_ID = SearchAttributeKey.for_keyword("GsfServerId")
SA_NODE_ID = SearchAttributeKey.for_keyword("GsfNodeId")
SA_OWNER = SearchAttributeKey.for_keyword("GsfOwner")
SA_STATUS = SearchAttributeKey.for_keyword("GsfStatus")
SEARCH_ATTRIBUTES = (SA_SERVER_ID, SA_NODE_ID, SA_OWNER, SA_STATUS)


def dev_server_search_attribute_args() -> list[str]:
    args: list[str] = []
    for key in SEARCH_ATTRIBUTES:
        args += ["--search-attribute", f"{key.name}=Keyword"]
    return args


async def connect(settings: Settings) -> Client:
    tls: TLSConfig | bool = False
    if settings.temporal_tls_cert or settings.temporal_tls_ca:
        tls = TLSConfig(
            client_cert=settings.temporal_tls_cert.read_bytes() if settings.temporal_tls_cert else None,
            client_private_key=settings.temporal_tls_key.read_bytes() if settings.temporal_tls_key else None,
            server_root_ca_cert=settings.temporal_tls_ca.read_bytes() if settings.temporal_tls_ca else None,
        )
    elif settings.temporal_api_key:
        tls = True
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        tls=tls,
        api_key=settings.temporal_api_key,
        # Tracing (issue #7): [] unless GSF_OTEL_EXPORTER is set; workers on this client trace too.
        interceptors=tracing.temporal_interceptors(settings),
    )
