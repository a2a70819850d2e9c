"""Fixtures of the campaign-gateway integration tests, one module per kind of real server."""

from tests.integration.campaign_gateway.ssh_fixtures import pmta_nodes, pmta_servers, ssh_client_key

__all__ = ["pmta_nodes", "pmta_servers", "ssh_client_key"]
