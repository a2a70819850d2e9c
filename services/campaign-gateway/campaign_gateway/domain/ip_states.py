"""THE place where the ip-pool service's IP states are named in this service, and which of them send.

Public API:
    IpState         -- WARMING, WARM, STANDBY, PAUSED, RETIRED, as ip-pool's events and ListIps give them
    SENDING_STATES  -- WARMING and WARM: the states an IP sends in (its quotas permitting)

Both the MailWizz side (`quota_sync.py`: an IP that may not send gets an inactive delivery server) and the PowerMTA
side (`pmta_config.py`: it leaves its tenant's pool) read them from here.
"""

from __future__ import annotations

from enum import StrEnum


class IpState(StrEnum):
    WARMING = "WARMING"
    WARM = "WARM"
    STANDBY = "STANDBY"
    PAUSED = "PAUSED"
    RETIRED = "RETIRED"


SENDING_STATES = frozenset({IpState.WARMING, IpState.WARM})
