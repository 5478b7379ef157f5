"""moto_server with one addition the emulator proofs need: CloudWatch PutCompositeAlarm.

moto 5.2.5 stores composite alarms (an alarm with an AlarmRule: DescribeAlarms returns them under
CompositeAlarms, with their rule and actions) but does not route the PutCompositeAlarm action, whose parameters
are a subset of PutMetricAlarm's, to its alarm store. This routes it there; nothing else changes. The burn-rate
alarms of iac/modules/monitoring are composite alarms, so without this `terraform apply` cannot create them.

Run as `python -m tests.iac.moto_server -H 127.0.0.1 -p PORT` (the arguments of moto_server).
"""

from __future__ import annotations

import sys

from moto.cloudwatch.responses import CloudWatchResponse
from moto.server import main


def add_put_composite_alarm() -> None:
    if not hasattr(CloudWatchResponse, "put_composite_alarm"):
        CloudWatchResponse.put_composite_alarm = CloudWatchResponse.put_metric_alarm  # type: ignore[attr-defined]


if __name__ == "__main__":
    add_put_composite_alarm()
    sys.exit(main(sys.argv[1:]))
