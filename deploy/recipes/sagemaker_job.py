"""Amazon SageMaker: `driftloop tick` as a processing job (a container that runs one command).
Schedule it with EventBridge Scheduler, or run it from any script with boto3:

    python sagemaker_job.py IMAGE_URI ROLE_ARN

The image (in your ECR) holds driftloop and the project folder at /opt/project. The store URL
is read from Secrets Manager (secret `driftloop/store-url`) when the job is submitted and given
to it as DRIFTLOOP_STORE_URL; it is never written in this file.
"""

from __future__ import annotations

import sys
import time

import boto3


def tick_job(image: str, role: str, store_url: str) -> dict[str, object]:
    """The CreateProcessingJob request for one tick."""
    return {
        "ProcessingJobName": f"driftloop-tick-{int(time.time())}",
        "RoleArn": role,
        "AppSpecification": {
            "ImageUri": image,
            "ContainerEntrypoint": ["driftloop", "tick", "--json", "--exit-zero"],
            "ContainerArguments": ["--spec", "/opt/project/driftloop.yaml"],
        },
        "ProcessingResources": {"ClusterConfig": {
            "InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "Environment": {"DRIFTLOOP_STORE_URL": store_url},
    }


if __name__ == "__main__":
    secret = boto3.client("secretsmanager").get_secret_value(SecretId="driftloop/store-url")
    job = tick_job(sys.argv[1], sys.argv[2], secret["SecretString"])
    boto3.client("sagemaker").create_processing_job(**job)
