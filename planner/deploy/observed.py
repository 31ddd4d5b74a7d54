"""What exists on AWS for a deployment, read back in the shape :mod:`.desired` writes: found by the deployment's
tag only, so resources made outside deploy (or by another deployment) are never seen, changed or deleted."""

from __future__ import annotations

from dataclasses import dataclass, field

from hetplan.planner.deploy import TAG_DEPLOYMENT, TAG_PLAN, TAG_RESOURCE, TAG_START
from hetplan.planner.deploy.aws import Clients, aws_errors, error_code
from hetplan.planner.deploy.steps import ALIAS, DEFAULT_ROUTE, short_name


@dataclass
class Found:
    kind: str
    key: str
    aws_name: str
    arn: str
    spec: dict
    plan: str | None = None  # the TAG_PLAN tag
    ids: dict = field(default_factory=dict)  # listener and rule ARNs of a load balancer


def tag_dict(tags) -> dict[str, str]:
    if isinstance(tags, dict):
        return dict(tags)
    return {t["Key"]: t["Value"] for t in tags or []}


def observe(clients: Clients, name: str) -> dict[tuple[str, str], Found]:
    """Every resource tagged ``hetplan:deployment = name``, keyed by (kind, logical name)."""
    found: dict[tuple[str, str], Found] = {}
    with aws_errors(f"reading deployment {name}"):
        for reader in (_role, _launch_templates, _target_groups, _functions, _groups, _concurrency, _load_balancer):
            for item in reader(clients, name, found):
                found[(item.kind, item.key)] = item
    return found


def _mine(tags: dict, name: str) -> bool:
    return tags.get(TAG_DEPLOYMENT) == name and TAG_RESOURCE in tags


def _keys_of(found: dict, kind: str, attribute: str) -> dict[str, str]:
    return {getattr(f, attribute): f.key for (k, _), f in found.items() if k == kind}


def _role(clients, name, found):
    key = f"{name}-lambda"
    try:
        role = clients.iam.get_role(RoleName=short_name(key, 64, r"A-Za-z0-9+=,.@_-"))["Role"]
    except Exception as exc:  # NoSuchEntity: no role of ours
        if error_code(exc) == "NoSuchEntity":
            return []
        raise
    tags = tag_dict(clients.iam.list_role_tags(RoleName=role["RoleName"])["Tags"])
    if not _mine(tags, name):
        return []
    return [Found("role", tags[TAG_RESOURCE], role["RoleName"], role["Arn"], {"trusts": "lambda.amazonaws.com"}, tags.get(TAG_PLAN))]


def _launch_templates(clients, name, found):
    out = []
    pages = clients.ec2.get_paginator("describe_launch_templates").paginate(
        Filters=[{"Name": f"tag:{TAG_DEPLOYMENT}", "Values": [name]}])
    for template in (t for page in pages for t in page["LaunchTemplates"]):
        tags = tag_dict(template.get("Tags"))
        if not _mine(tags, name):
            continue
        data = clients.ec2.describe_launch_template_versions(LaunchTemplateId=template["LaunchTemplateId"], Versions=["$Default"])
        data = data["LaunchTemplateVersions"][0]["LaunchTemplateData"]
        spec = {"image_id": data.get("ImageId"), "instance_type": data.get("InstanceType"),
                "key_name": data.get("KeyName"), "user_data": data.get("UserData")}
        out.append(Found("launch-template", tags[TAG_RESOURCE], template["LaunchTemplateName"], template["LaunchTemplateId"],
                         spec, tags.get(TAG_PLAN)))
    return out


def _target_groups(clients, name, found):
    groups = [g for page in clients.elb.get_paginator("describe_target_groups").paginate() for g in page["TargetGroups"]]
    out = []
    for i in range(0, len(groups), 20):  # DescribeTags takes at most 20 ARNs
        chunk = {g["TargetGroupArn"]: g for g in groups[i:i + 20]}
        for description in clients.elb.describe_tags(ResourceArns=list(chunk))["TagDescriptions"]:
            tags, group = tag_dict(description["Tags"]), chunk[description["ResourceArn"]]
            if not _mine(tags, name):
                continue
            instance = group["TargetType"] == "instance"
            spec = {"target_type": group["TargetType"], "port": group.get("Port") if instance else None,
                    "vpc": group.get("VpcId") if instance else None}
            out.append(Found("target-group", tags[TAG_RESOURCE], group["TargetGroupName"], group["TargetGroupArn"], spec, tags.get(TAG_PLAN)))
    return out


def _functions(clients, name, found):
    roles = _keys_of(found, "role", "arn")
    out = []
    for config in (f for page in clients.lam.get_paginator("list_functions").paginate() for f in page["Functions"]):
        if not config["FunctionName"].startswith(name + "-"):  # every function of the deployment is named so
            continue
        tags = tag_dict(clients.lam.list_tags(Resource=config["FunctionArn"]).get("Tags"))
        if not _mine(tags, name):
            continue
        role = config.get("Role")
        spec = {"memory_mb": config.get("MemorySize"), "architecture": (config.get("Architectures") or ["x86_64"])[0],
                "code_sha256": config.get("CodeSha256"), "runtime": config.get("Runtime"), "handler": config.get("Handler"),
                "role": f"role:{roles[role]}" if role in roles else role, "timeout_s": config.get("Timeout"),
                "environment": (config.get("Environment") or {}).get("Variables") or {}}
        out.append(Found("function", tags[TAG_RESOURCE], config["FunctionName"], config["FunctionArn"], spec, tags.get(TAG_PLAN)))
    return out


def _groups(clients, name, found):
    templates, target_groups = _keys_of(found, "launch-template", "aws_name"), _keys_of(found, "target-group", "arn")
    pages = clients.autoscaling.get_paginator("describe_auto_scaling_groups").paginate(
        Filters=[{"Name": f"tag:{TAG_DEPLOYMENT}", "Values": [name]}])
    out = []
    for group in (g for page in pages for g in page["AutoScalingGroups"]):
        tags = tag_dict(group.get("Tags"))
        if not _mine(tags, name):
            continue
        actions = [a for page in clients.autoscaling.get_paginator("describe_scheduled_actions").paginate(
            AutoScalingGroupName=group["AutoScalingGroupName"]) for a in page["ScheduledUpdateGroupActions"]]
        template = (group.get("LaunchTemplate") or {}).get("LaunchTemplateName")
        arns = group.get("TargetGroupARNs") or []
        spec = {"launch_template": templates.get(template, template),
                "subnets": sorted(s for s in (group.get("VPCZoneIdentifier") or "").split(",") if s),
                "target_group": target_groups.get(arns[0], arns[0]) if len(arns) == 1 else sorted(arns),
                "max_size": group["MaxSize"], "desired_now": group["DesiredCapacity"],
                "schedule": {a["ScheduledActionName"]: a.get("DesiredCapacity") for a in actions}}
        out.append(Found("group", tags[TAG_RESOURCE], group["AutoScalingGroupName"], group["AutoScalingGroupARN"], spec, tags.get(TAG_PLAN)))
    return out


def concurrency_resource(function_name: str) -> str:
    return f"function:{function_name}:{ALIAS}"


def _concurrency(clients, name, found):
    """Provisioned concurrency belongs to a function of ours: its scalable target and scheduled actions on the alias."""
    out = []
    for (kind, key), function in list(found.items()):
        if kind != "function":
            continue
        resource = concurrency_resource(function.aws_name)
        targets = clients.scaling.describe_scalable_targets(ServiceNamespace="lambda", ResourceIds=[resource])["ScalableTargets"]
        if not targets:
            continue
        actions = clients.scaling.describe_scheduled_actions(ServiceNamespace="lambda", ResourceId=resource)["ScheduledActions"]
        low, high = targets[0]["MinCapacity"], targets[0]["MaxCapacity"]
        spec = {"desired_now": low if low == high else [low, high],
                "schedule": {a["ScheduledActionName"]: a["ScalableTargetAction"].get("MinCapacity") for a in actions}}
        out.append(Found("concurrency", key, resource, targets[0].get("ScalableTargetARN", resource), spec, function.plan))
    return out


def _load_balancer(clients, name, found):
    target_groups = _keys_of(found, "target-group", "arn")
    try:
        balancer = clients.elb.describe_load_balancers(Names=[short_name(name, 32)])["LoadBalancers"][0]
    except Exception as exc:
        if error_code(exc) == "LoadBalancerNotFound":
            return []
        raise
    tags = tag_dict(clients.elb.describe_tags(ResourceArns=[balancer["LoadBalancerArn"]])["TagDescriptions"][0]["Tags"])
    if not _mine(tags, name):
        return []
    routes, ids = {}, {}
    for listener in clients.elb.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"]:
        ids["listener"] = listener["ListenerArn"]
        for rule in clients.elb.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]:
            path = DEFAULT_ROUTE if rule.get("IsDefault") else _path_of(rule)
            ids[path] = rule["RuleArn"]
            forward = next((a.get("ForwardConfig") for a in rule.get("Actions", []) if a["Type"] == "forward"), None) or {}
            routes[path] = {target_groups.get(t["TargetGroupArn"], t["TargetGroupArn"]): t.get("Weight", 1)
                            for t in forward.get("TargetGroups", []) if t.get("Weight", 1) > 0}
    spec = {"subnets": sorted(z["SubnetId"] for z in balancer.get("AvailabilityZones", [])), "start": tags.get(TAG_START),
            "routes": routes}
    return [Found("load-balancer", tags[TAG_RESOURCE], balancer["LoadBalancerName"], balancer["LoadBalancerArn"], spec,
                  tags.get(TAG_PLAN), ids)]


def _path_of(rule: dict) -> str:
    for condition in rule.get("Conditions", []):
        if condition.get("Field") == "path-pattern":
            values = (condition.get("PathPatternConfig") or {}).get("Values") or condition.get("Values") or []
            if values:
                return values[0]
    return rule["RuleArn"]  # a rule that is not one of ours: kept apart, so a diff deletes nothing it did not make
