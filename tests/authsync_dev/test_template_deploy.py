"""The local stack's data resources under each EgressMode: the network is AWS's business, not moto's."""

from __future__ import annotations

import boto3
import pytest

from authsync_dev.template import DATA_TYPES, deploy_data_resources, load_template


@pytest.mark.parametrize("egress_mode", ["Default", "FixedIp"])
def test_the_local_stack_deploys_the_same_data_resources_and_no_network_in_either_egress_mode(
    aws: None, egress_mode: str
) -> None:
    template = load_template()
    network = {k for k, v in template["Resources"].items() if v["Type"].startswith("AWS::EC2::")}
    assert network
    assert not {template["Resources"][k]["Type"] for k in network} & DATA_TYPES
    vpcs_before = boto3.client("ec2").describe_vpcs()["Vpcs"]  # moto's default VPC

    deployment = deploy_data_resources("authsync-egress", {"Stage": "dev", "EgressMode": egress_mode})

    data = {k for k, v in template["Resources"].items() if v["Type"] in DATA_TYPES}
    assert set(deployment.physical) == data
    assert boto3.client("ec2").describe_vpcs()["Vpcs"] == vpcs_before
    outputs = deployment.outputs()
    assert "EgressIp" not in outputs  # no Elastic IP locally: the output is left out, not invented
    assert outputs["CorpsTableName"] == "authsync-egress-corps"
    # The WeCom callers' environment resolves as before (their VpcConfig is not an environment matter).
    assert deployment.function_environment("TokenRefreshFunction")["WECOM_API_BASE"] == "https://qyapi.weixin.qq.com"
