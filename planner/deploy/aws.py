"""boto3 clients for deploy: the standard credential chain, botocore's standard retry mode, one endpoint for all.

AWS errors become one :class:`DeployError` line naming the resource and the AWS error code; what was already made
is listed by the caller (:mod:`.changes`), so a re-run or ``--teardown`` can finish.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from hetplan.errors import HetplanError, did_you_mean
from hetplan.planner.deploy.steps import DeployError

SERVICES = {"ec2": "ec2", "autoscaling": "autoscaling", "lam": "lambda", "scaling": "application-autoscaling",
            "elb": "elbv2", "iam": "iam"}
MAX_ATTEMPTS = 8  # botocore standard mode: exponential backoff with jitter on throttling and transient errors


@dataclass
class Clients:
    """One client per service, made on first use, all through the same session, endpoint and retry policy."""

    session: object
    endpoint_url: str | None
    _made: dict = field(default_factory=dict)

    def __getattr__(self, name: str):
        if name.startswith("_") or name not in SERVICES:
            raise AttributeError(name)
        if name not in self._made:
            from botocore.config import Config

            config = Config(retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS}, connect_timeout=10, read_timeout=60)
            self._made[name] = self.session.client(SERVICES[name], endpoint_url=self.endpoint_url, config=config)
        return self._made[name]

    @property
    def region(self) -> str:
        return self.session.region_name


def known_regions(session) -> set[str]:
    regions = set()
    for partition in session.get_available_partitions():
        regions |= set(session.get_available_regions("ec2", partition_name=partition))
    return regions


def connect(region: str | None, profile: str | None, endpoint_url: str | None) -> Clients:
    """Clients from the usual chain (``--profile``/``AWS_PROFILE``, ``--region``/``AWS_REGION``, the config files);
    an unknown region or profile, or no region at all, is bad input (exit 2) before any call is made."""
    import os

    import boto3
    import botocore.exceptions

    region = region or os.environ.get("AWS_REGION") or None  # boto3 itself reads only AWS_DEFAULT_REGION
    try:
        session = boto3.session.Session(profile_name=profile, region_name=region)
    except botocore.exceptions.ProfileNotFound:
        raise HetplanError(f"AWS profile '{profile}' is not in your AWS config: name one from ~/.aws/config or drop --profile") from None
    if not session.region_name:
        raise HetplanError("no AWS region: give --region (e.g. us-east-1) or set AWS_REGION")
    regions = known_regions(session)
    if session.region_name not in regions:
        raise HetplanError(f"unknown AWS region '{session.region_name}'{did_you_mean(session.region_name, regions)}: "
                           "give --region with a region name such as us-east-1")
    if endpoint_url is not None and not endpoint_url.startswith(("http://", "https://")):
        raise HetplanError(f"--endpoint-url '{endpoint_url}' is not a URL: write http://host:port or https://host")
    return Clients(session, endpoint_url)


def error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return response.get("Error", {}).get("Code") or type(exc).__name__


@contextlib.contextmanager
def aws_errors(doing: str, done: list[str] | None = None):
    """Turn an AWS failure while ``doing`` (e.g. "creating group web-resnet-c5.large") into one DeployError line."""
    import botocore.exceptions

    try:
        yield
    except botocore.exceptions.ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", "")
        raise DeployError(f"{doing}: AWS error {error_code(exc)}: {message}{_so_far(done)}") from None
    except botocore.exceptions.NoCredentialsError:
        raise DeployError("no AWS credentials: set AWS_PROFILE (or --profile), or AWS_ACCESS_KEY_ID and "
                          "AWS_SECRET_ACCESS_KEY") from None
    except botocore.exceptions.EndpointConnectionError as exc:
        raise DeployError(f"{doing}: cannot reach {exc.kwargs.get('endpoint_url', 'the AWS endpoint')}: check "
                          f"--endpoint-url and the network{_so_far(done)}") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise DeployError(f"{doing}: {type(exc).__name__}: {exc}{_so_far(done)}") from None


def _so_far(done: list[str] | None) -> str:
    if not done:
        return ""
    return f"; already done: {', '.join(done)} (re-run the same command to finish, or --teardown to remove them)"
