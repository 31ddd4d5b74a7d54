"""Create, update and delete, one kind of AWS resource at a time; :mod:`.changes` calls them in dependency order.

Every call is a real AWS API call through boto3 (tested against moto's server). Updates touch only the fields that
differ, and scheduled actions are added, changed or removed one by one, so a new plan changes only what differs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from hetplan.planner.deploy import TAG_DEPLOYMENT, TAG_PLAN, TAG_RESOURCE, TAG_START
from hetplan.planner.deploy.aws import Clients
from hetplan.planner.deploy.desired import Resource
from hetplan.planner.deploy.observed import Found, concurrency_resource
from hetplan.planner.deploy.steps import ALIAS, DEFAULT_ROUTE

LAMBDA_TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                         "Action": "sts:AssumeRole"}]}
# what AWSLambdaBasicExecutionRole grants, inline so the role owns it (and teardown removes it with the role)
LAMBDA_LOGS_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
    "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]}]}
DIMENSION = "lambda:function:ProvisionedConcurrency"
ROLE_PROPAGATION_S = 60  # a new IAM role can take seconds before Lambda may assume it


@dataclass
class Context:
    clients: Clients
    name: str
    digest: str
    zip_bytes: bytes | None
    arns: dict = field(default_factory=dict)  # (kind, key) → ARN of what exists now
    names: dict = field(default_factory=dict)  # (kind, key) → AWS name

    def tags(self, key: str) -> dict[str, str]:
        return {TAG_DEPLOYMENT: self.name, TAG_PLAN: self.digest, TAG_RESOURCE: key}

    def tag_list(self, key: str, **extra) -> list[dict]:
        return [{"Key": k, "Value": v} for k, v in {**self.tags(key), **extra}.items()]

    def resolve(self, value):
        """``role:<key>`` (a role this deployment makes) → its ARN."""
        if isinstance(value, str) and value.startswith("role:"):
            return self.arns[("role", value[5:])]
        return value


# --- role -------------------------------------------------------------------------------------------------

def create_role(ctx: Context, r: Resource) -> str:
    iam = ctx.clients.iam
    role = iam.create_role(RoleName=r.aws_name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST),
                           Description=f"hetplan deployment {ctx.name}: Lambda execution", Tags=ctx.tag_list(r.key))["Role"]
    iam.put_role_policy(RoleName=r.aws_name, PolicyName="logs", PolicyDocument=json.dumps(LAMBDA_LOGS_POLICY))
    return role["Arn"]


def delete_role(ctx: Context, f: Found) -> None:
    iam = ctx.clients.iam
    for policy in iam.list_role_policies(RoleName=f.aws_name)["PolicyNames"]:
        iam.delete_role_policy(RoleName=f.aws_name, PolicyName=policy)
    for policy in iam.list_attached_role_policies(RoleName=f.aws_name)["AttachedPolicies"]:
        iam.detach_role_policy(RoleName=f.aws_name, PolicyArn=policy["PolicyArn"])
    iam.delete_role(RoleName=f.aws_name)


# --- launch template ----------------------------------------------------------------------------------------

def _template_data(spec: dict) -> dict:
    data = {"ImageId": spec["image_id"], "InstanceType": spec["instance_type"], "UserData": spec["user_data"]}
    if spec["key_name"]:
        data["KeyName"] = spec["key_name"]
    return data


def create_launch_template(ctx: Context, r: Resource) -> str:
    made = ctx.clients.ec2.create_launch_template(
        LaunchTemplateName=r.aws_name, LaunchTemplateData=_template_data(r.spec),
        TagSpecifications=[{"ResourceType": "launch-template", "Tags": ctx.tag_list(r.key)}])
    return made["LaunchTemplate"]["LaunchTemplateId"]


def update_launch_template(ctx: Context, r: Resource, f: Found) -> None:
    """A new version made the default: running VMs keep theirs; the group launches the new one from now on."""
    ec2 = ctx.clients.ec2
    version = ec2.create_launch_template_version(LaunchTemplateId=f.arn, LaunchTemplateData=_template_data(r.spec))
    ec2.modify_launch_template(LaunchTemplateId=f.arn, DefaultVersion=str(version["LaunchTemplateVersion"]["VersionNumber"]))
    ec2.create_tags(Resources=[f.arn], Tags=ctx.tag_list(r.key))


def delete_launch_template(ctx: Context, f: Found) -> None:
    ctx.clients.ec2.delete_launch_template(LaunchTemplateId=f.arn)


# --- target group -------------------------------------------------------------------------------------------

def create_target_group(ctx: Context, r: Resource) -> str:
    kwargs = {"Name": r.aws_name, "TargetType": r.spec["target_type"], "Tags": ctx.tag_list(r.key)}
    if r.spec["target_type"] == "instance":
        kwargs.update(Protocol="HTTP", Port=r.spec["port"], VpcId=r.spec["vpc"], HealthCheckPath="/ping")
    return ctx.clients.elb.create_target_group(**kwargs)["TargetGroups"][0]["TargetGroupArn"]


def delete_target_group(ctx: Context, f: Found) -> None:
    ctx.clients.elb.delete_target_group(TargetGroupArn=f.arn)


# --- function -------------------------------------------------------------------------------------------------

def _configuration(ctx: Context, spec: dict) -> dict:
    return {"Runtime": spec["runtime"], "Role": ctx.resolve(spec["role"]), "Handler": spec["handler"],
            "MemorySize": spec["memory_mb"], "Timeout": spec["timeout_s"], "Environment": {"Variables": spec["environment"]}}


def create_function(ctx: Context, r: Resource) -> str:
    """The function, version 1 behind the alias, the load balancer's permission to invoke it, and its target group."""
    lam = ctx.clients.lam
    deadline = time.monotonic() + ROLE_PROPAGATION_S
    while True:
        try:
            made = lam.create_function(FunctionName=r.aws_name, Code={"ZipFile": ctx.zip_bytes}, Publish=True,
                                       Architectures=[r.spec["architecture"]], Tags=ctx.tags(r.key), **_configuration(ctx, r.spec))
            break
        except Exception as exc:  # a role made seconds ago may not be assumable yet
            if "cannot be assumed" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(3)
    _wait(ctx, r.aws_name)
    alias = lam.create_alias(FunctionName=r.aws_name, Name=ALIAS, FunctionVersion=made["Version"])["AliasArn"]
    target_group = ctx.arns[("target-group", r.key)]
    lam.add_permission(FunctionName=r.aws_name, Qualifier=ALIAS, StatementId="hetplan-load-balancer",
                       Action="lambda:InvokeFunction", Principal="elasticloadbalancing.amazonaws.com", SourceArn=target_group)
    ctx.clients.elb.register_targets(TargetGroupArn=target_group, Targets=[{"Id": alias}])
    return made["FunctionArn"]


def update_function(ctx: Context, r: Resource, f: Found) -> None:
    """New code or configuration, then a new version behind the alias (the load balancer follows the alias)."""
    lam = ctx.clients.lam
    if (r.spec["code_sha256"], r.spec["architecture"]) != (f.spec["code_sha256"], f.spec["architecture"]):
        lam.update_function_code(FunctionName=f.aws_name, ZipFile=ctx.zip_bytes, Architectures=[r.spec["architecture"]])
        _wait(ctx, f.aws_name)
    config = {k: v for k, v in r.spec.items() if k not in ("code_sha256", "architecture")}
    if config != {k: v for k, v in f.spec.items() if k not in ("code_sha256", "architecture")}:
        lam.update_function_configuration(FunctionName=f.aws_name, **_configuration(ctx, r.spec))
        _wait(ctx, f.aws_name)
    version = lam.publish_version(FunctionName=f.aws_name)["Version"]
    lam.update_alias(FunctionName=f.aws_name, Name=ALIAS, FunctionVersion=version)
    lam.tag_resource(Resource=f.arn, Tags=ctx.tags(r.key))


def _wait(ctx: Context, function_name: str) -> None:
    ctx.clients.lam.get_waiter("function_updated_v2").wait(FunctionName=function_name, WaiterConfig={"Delay": 1, "MaxAttempts": 300})


def delete_function(ctx: Context, f: Found) -> None:
    ctx.clients.lam.delete_function(FunctionName=f.aws_name)


# --- Auto Scaling group ---------------------------------------------------------------------------------------

def _put_group_actions(ctx: Context, group: str, schedule: dict, old: dict) -> None:
    asg = ctx.clients.autoscaling
    gone = [n for n in old if n not in schedule]
    for i in range(0, len(gone), 50):  # BatchDeleteScheduledAction takes at most 50 names
        asg.batch_delete_scheduled_action(AutoScalingGroupName=group, ScheduledActionNames=gone[i:i + 50])
    for action, desired in sorted(schedule.items()):
        if old.get(action) != desired:
            asg.put_scheduled_update_group_action(AutoScalingGroupName=group, ScheduledActionName=action,
                                                  StartTime=_when(action), DesiredCapacity=desired)


def _when(action: str) -> str:
    """The ISO time an action is named after (``web-resnet-c5-large-20270105T075820Z``)."""
    stamp = action.rsplit("-", 1)[1]
    return f"{stamp[0:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}Z"


def create_group(ctx: Context, r: Resource) -> str:
    s = r.spec
    ctx.clients.autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=r.aws_name, MinSize=0, MaxSize=s["max_size"], DesiredCapacity=s["desired_now"],
        LaunchTemplate={"LaunchTemplateName": ctx.names[("launch-template", s["launch_template"])], "Version": "$Default"},
        VPCZoneIdentifier=",".join(s["subnets"]), TargetGroupARNs=[ctx.arns[("target-group", s["target_group"])]],
        Tags=[{**t, "ResourceId": r.aws_name, "ResourceType": "auto-scaling-group", "PropagateAtLaunch": True}
              for t in ctx.tag_list(r.key)])
    _put_group_actions(ctx, r.aws_name, s["schedule"], {})
    groups = ctx.clients.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[r.aws_name])["AutoScalingGroups"]
    return groups[0]["AutoScalingGroupARN"]


def update_group(ctx: Context, r: Resource, f: Found) -> None:
    asg, s, old = ctx.clients.autoscaling, r.spec, f.spec
    if any(s[k] != old[k] for k in ("launch_template", "subnets", "max_size", "desired_now")):
        asg.update_auto_scaling_group(
            AutoScalingGroupName=f.aws_name, MaxSize=s["max_size"], DesiredCapacity=s["desired_now"],
            LaunchTemplate={"LaunchTemplateName": ctx.names[("launch-template", s["launch_template"])], "Version": "$Default"},
            VPCZoneIdentifier=",".join(s["subnets"]))
    if s["target_group"] != old["target_group"]:
        arn = ctx.arns[("target-group", s["target_group"])]
        asg.attach_load_balancer_target_groups(AutoScalingGroupName=f.aws_name, TargetGroupARNs=[arn])
    _put_group_actions(ctx, f.aws_name, s["schedule"], old["schedule"])
    asg.create_or_update_tags(Tags=[{**t, "ResourceId": f.aws_name, "ResourceType": "auto-scaling-group", "PropagateAtLaunch": True}
                                    for t in ctx.tag_list(r.key)])


def delete_group(ctx: Context, f: Found) -> None:
    """Deleted with its VMs (ForceDelete), waited for, so its target group can go next."""
    asg = ctx.clients.autoscaling
    asg.delete_auto_scaling_group(AutoScalingGroupName=f.aws_name, ForceDelete=True)
    for _ in range(600):
        if not asg.describe_auto_scaling_groups(AutoScalingGroupNames=[f.aws_name])["AutoScalingGroups"]:
            return
        time.sleep(2)


# --- provisioned concurrency --------------------------------------------------------------------------------------

def _put_concurrency_actions(ctx: Context, resource: str, schedule: dict, old: dict) -> None:
    scaling = ctx.clients.scaling
    for action in old:
        if action not in schedule:
            scaling.delete_scheduled_action(ServiceNamespace="lambda", ScheduledActionName=action, ResourceId=resource,
                                            ScalableDimension=DIMENSION)
    for action, value in sorted(schedule.items()):
        if old.get(action) != value:
            scaling.put_scheduled_action(ServiceNamespace="lambda", ScheduledActionName=action, ResourceId=resource,
                                         ScalableDimension=DIMENSION, Schedule=f"at({_when(action)[:-1]})",
                                         ScalableTargetAction={"MinCapacity": value, "MaxCapacity": value})


def _register(ctx: Context, resource: str, value: int) -> dict:
    """The alias's provisioned concurrency now: min = max = value, as each scheduled action sets it later (Application
    Auto Scaling then provisions it; deploy never calls Lambda's concurrency API itself)."""
    return ctx.clients.scaling.register_scalable_target(ServiceNamespace="lambda", ResourceId=resource, ScalableDimension=DIMENSION,
                                                        MinCapacity=value, MaxCapacity=value)


def create_concurrency(ctx: Context, r: Resource) -> str:
    resource = concurrency_resource(ctx.names[("function", r.key)])
    made = _register(ctx, resource, r.spec["desired_now"])
    _put_concurrency_actions(ctx, resource, r.spec["schedule"], {})
    return made.get("ScalableTargetARN", resource)


def update_concurrency(ctx: Context, r: Resource, f: Found) -> None:
    if r.spec["desired_now"] != f.spec["desired_now"]:
        _register(ctx, f.aws_name, r.spec["desired_now"])
    _put_concurrency_actions(ctx, f.aws_name, r.spec["schedule"], f.spec["schedule"])


def delete_concurrency(ctx: Context, f: Found) -> None:
    _put_concurrency_actions(ctx, f.aws_name, {}, f.spec["schedule"])
    ctx.clients.scaling.deregister_scalable_target(ServiceNamespace="lambda", ResourceId=f.aws_name, ScalableDimension=DIMENSION)


# --- load balancer ------------------------------------------------------------------------------------------------

def _forward(ctx: Context, weights: dict[str, int]) -> list[dict]:
    if not weights:  # a window without planned traffic
        return [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503", "ContentType": "text/plain",
                                                                   "MessageBody": "no capacity planned for this window"}}]
    groups = [{"TargetGroupArn": ctx.arns[("target-group", key)], "Weight": w} for key, w in sorted(weights.items())]
    return [{"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}]


def _rule(path: str) -> list[dict]:
    return [{"Field": "path-pattern", "PathPatternConfig": {"Values": [path]}}]


def create_load_balancer(ctx: Context, r: Resource) -> str:
    elb = ctx.clients.elb
    balancer = elb.create_load_balancer(Name=r.aws_name, Subnets=r.spec["subnets"], Type="application", Scheme="internet-facing",
                                        Tags=ctx.tag_list(r.key, **{TAG_START: r.spec["start"]}))["LoadBalancers"][0]
    routes = r.spec["routes"]
    listener = elb.create_listener(LoadBalancerArn=balancer["LoadBalancerArn"], Protocol="HTTP", Port=80,
                                   DefaultActions=_forward(ctx, routes[DEFAULT_ROUTE]))["Listeners"][0]["ListenerArn"]
    for priority, path in enumerate(sorted(p for p in routes if p != DEFAULT_ROUTE), start=1):
        elb.create_rule(ListenerArn=listener, Priority=priority, Conditions=_rule(path), Actions=_forward(ctx, routes[path]))
    return balancer["LoadBalancerArn"]


def update_load_balancer(ctx: Context, r: Resource, f: Found) -> None:
    """New subnets, start tag or weights; a model's route added or removed. Weights change in place (no gap)."""
    elb, new, old = ctx.clients.elb, r.spec["routes"], f.spec["routes"]
    if r.spec["subnets"] != f.spec["subnets"]:
        elb.set_subnets(LoadBalancerArn=f.arn, Subnets=r.spec["subnets"])
    if new[DEFAULT_ROUTE] != old.get(DEFAULT_ROUTE):
        elb.modify_listener(ListenerArn=f.ids["listener"], DefaultActions=_forward(ctx, new[DEFAULT_ROUTE]))
    paths = sorted(p for p in new if p != DEFAULT_ROUTE)
    for path in paths:
        if path not in f.ids:
            elb.create_rule(ListenerArn=f.ids["listener"], Priority=_free_priority(f.ids, paths, path), Conditions=_rule(path),
                            Actions=_forward(ctx, new[path]))
        elif new[path] != old.get(path):
            elb.modify_rule(RuleArn=f.ids[path], Actions=_forward(ctx, new[path]))
    for path in old:
        if path != DEFAULT_ROUTE and path not in new and path in f.ids:
            elb.delete_rule(RuleArn=f.ids[path])
    elb.add_tags(ResourceArns=[f.arn], Tags=ctx.tag_list(r.key, **{TAG_START: r.spec["start"]}))


def _free_priority(ids: dict, paths: list[str], path: str) -> int:
    """Rule priorities must be unique: a new route takes 1000 + its place, clear of the first deploy's 1..n."""
    return 1000 + paths.index(path) + len([p for p in ids if p.startswith("/")])


def delete_load_balancer(ctx: Context, f: Found) -> None:
    elb = ctx.clients.elb
    elb.delete_load_balancer(LoadBalancerArn=f.arn)
    elb.get_waiter("load_balancers_deleted").wait(LoadBalancerArns=[f.arn], WaiterConfig={"Delay": 2, "MaxAttempts": 150})


OPERATIONS = {
    "role": (create_role, None, delete_role),
    "launch-template": (create_launch_template, update_launch_template, delete_launch_template),
    "target-group": (create_target_group, None, delete_target_group),
    "function": (create_function, update_function, delete_function),
    "group": (create_group, update_group, delete_group),
    "concurrency": (create_concurrency, update_concurrency, delete_concurrency),
    "load-balancer": (create_load_balancer, update_load_balancer, delete_load_balancer),
}
