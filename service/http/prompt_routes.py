"""The prompt router: `POST /v1/prompts/check`, would the generator take this prompt, and what would
it understand of it? Nothing is generated.

`decision` is what `trustframe generate` would do: "refuse" when the usage policy refuses the prompt
(the reading is then not computed: null) or the model cannot read it (`generator.text.read_prompt`:
nothing understood, or more than half of the content words unknown); "warn" when it would generate
but some words are not understood; "generate" otherwise.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from trustframe.service.http.deps import AUTH_PROBLEMS, rate_limit, require_api_key
from trustframe.service.http.problems import problem_doc

prompt_router = APIRouter(tags=["prompts"])


class PromptCheck(BaseModel):
    prompt: str = Field(description="the prompt, in any language", max_length=10_000)
    preset: str = Field("tfdit-s", description="the generator preset that would read it")


class PolicyResult(BaseModel):
    allowed: bool
    category: str | None = Field(description="the refused category, null when allowed")
    reason: str
    language: str = Field(description="the detected language (ISO 639-1, 'mixed' or 'und')")


class Reading(BaseModel):
    understood: list[str]
    unknown: list[str]
    refuse: bool
    warning: str | None


class PromptDecision(BaseModel):
    decision: Literal["generate", "warn", "refuse"]
    policy: PolicyResult
    understanding: Reading | None = Field(description="null when the policy refused the prompt")
    preset: str


@prompt_router.post(
    "/v1/prompts/check", response_model=PromptDecision,
    dependencies=[Depends(rate_limit), Depends(require_api_key)],
    responses={**AUTH_PROBLEMS, 400: problem_doc("Unknown preset"),
               422: problem_doc("Not a JSON object with a string `prompt`")},
)
def check_prompt(body: PromptCheck) -> PromptDecision:
    """The policy gate's decision and the words the generator would and would not understand."""
    from trustframe.generator.models import load_generator, presets
    from trustframe.generator.policy import check_prompt as policy_check

    if body.preset not in presets():
        raise HTTPException(400, f"unknown preset {body.preset!r}; known: {', '.join(presets())}")
    d = policy_check(body.prompt)
    policy = PolicyResult(allowed=d.allowed, category=d.category, reason=d.reason, language=d.language)
    if not d.allowed:
        return PromptDecision(decision="refuse", policy=policy, understanding=None, preset=body.preset)
    reading = load_generator(body.preset).read(body.prompt)
    decision = "refuse" if reading.refuse else "warn" if reading.unknown else "generate"
    return PromptDecision(decision=decision, policy=policy, understanding=Reading(**reading.to_dict()),
                          preset=body.preset)
