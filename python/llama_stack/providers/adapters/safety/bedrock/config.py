"""Settings of the AWS Bedrock Guardrails safety provider."""

from pydantic import BaseModel, Field


class BedrockSafetyConfig(BaseModel):
    """``remote::bedrock`` safety: which local AWS profile calls the guardrails."""

    aws_profile: str = Field(
        default="default",
        description="AWS credentials profile used to invoke the guardrails",
    )
