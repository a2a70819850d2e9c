"""The campaign-gateway assembled: its application (use cases over its adapters), and its definition for the
platform.

`DEFINITION` is registered as the `campaign-gateway` entry point of `emailengine.services` (pyproject.toml).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from campaign_gateway.adapters.unit_of_work import SqlCampaignUnitOfWork
from campaign_gateway.app.campaigns import CampaignUseCases
from campaign_gateway.config import CampaignGatewaySettings, load_config
from campaign_gateway.server import CampaignServicer
from emailengine.campaign.v1 import campaign_service_pb2_grpc as pb_grpc
from libs.runtime import Runtime, ServiceDefinition

SERVICE = "campaign-gateway"


@dataclass
class CampaignGatewayApp:
    config: CampaignGatewaySettings
    campaigns: CampaignUseCases


def build(rt: Runtime) -> CampaignGatewayApp:
    def unit_of_work() -> SqlCampaignUnitOfWork:
        return SqlCampaignUnitOfWork(rt.db, source=SERVICE, clock=rt.clock)

    config: CampaignGatewaySettings = rt.config
    return CampaignGatewayApp(
        config=config,
        campaigns=CampaignUseCases(unit_of_work, rt.clock, max_contacts=config.max_contacts_per_request),
    )


def add_servicers(app: CampaignGatewayApp, server: grpc.Server) -> None:
    pb_grpc.add_CampaignServiceServicer_to_server(CampaignServicer(app), server)


DEFINITION = ServiceDefinition(
    name=SERVICE,
    grpc_service="emailengine.campaign.v1.CampaignService",
    migrations=Path(__file__).parent / "adapters" / "migrations",
    build=build,
    add_servicers=add_servicers,
    load_config=load_config,
)
