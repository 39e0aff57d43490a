"""The emulator answers like the real APIs in the corners an upgrade trips over: reasoning and
thinking, a model's system_fingerprint, Azure OpenAI paths, the plugin's own LLM judge, and JSON
schemas whose smallest instance is enormous. Every test drives the real openai and anthropic SDKs
over HTTP on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.request
from typing import Any

import anthropic
import jsonschema
import openai
import pytest

from pytest_modelmigrate.checks import Judge, judge
from pytest_modelmigrate.emulator import Emulator, Script, ScriptError
from pytest_modelmigrate.emulator.autoreply import MAX_INSTANCE_BYTES

THINKING = "The customer wants a refund; check the policy first."

SCRIPT: dict[str, Any] = {
    "models": {
        "emu-reasoner": {
            "reasoning": {"text": THINKING, "tokens": 40},
            "fingerprint": "fp_abc123",
            "rules": [{"match": "refund", "reply": "Refunds take five days."}],
        },
        "emu-auto-reasoner": {"reasoning": True},
        "emu-plain": {"reasoning": False},
        "claude-emu": {"reasoning": {"text": THINKING}},
    },
}


@pytest.fixture(scope="module")
def emu() -> Any:
    with Emulator(SCRIPT, time_scale=0.0) as server:
        yield server


@pytest.fixture
def oai(emu: Emulator) -> openai.OpenAI:
    return openai.OpenAI(base_url=emu.url + "/v1", api_key="x", max_retries=0)


@pytest.fixture
def claude(emu: Emulator) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=emu.url, api_key="x", max_retries=0)


@pytest.fixture
def azure(emu: Emulator) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(azure_endpoint=emu.url, api_key="x", api_version="2024-10-21", max_retries=0)


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def post(url: str, body: object, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# -- Anthropic thinking ---------------------------------------------------------------------------


def test_anthropic_thinking_block_comes_before_the_text(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="claude-emu",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=user("What is the refund policy?"),
    )
    assert [block.type for block in message.content] == ["thinking", "text"]
    thinking, text = message.content
    assert isinstance(thinking, anthropic.types.ThinkingBlock)
    assert thinking.thinking == THINKING
    assert len(thinking.signature) > 100
    assert text.type == "text"
    assert text.text.startswith("Emulated reply from claude-emu")
    # the thinking tokens are output tokens, as Anthropic bills them
    plain = claude.messages.create(
        model="claude-emu", max_tokens=2048, messages=user("What is the refund policy?")
    )
    assert [block.type for block in plain.content] == ["text"]
    assert message.usage.output_tokens > plain.usage.output_tokens


def test_anthropic_thinking_streams_thinking_and_signature_deltas(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model="claude-emu",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=user("What is the refund policy?"),
    ) as stream:
        deltas = [event.delta.type for event in stream if event.type == "content_block_delta"]
        final = stream.get_final_message()
    first_text = deltas.index("text_delta")
    assert set(deltas[:first_text]) == {"thinking_delta", "signature_delta"}
    assert deltas[first_text - 1] == "signature_delta"  # the signature closes the thinking block
    assert [block.type for block in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == THINKING
    assert final.content[0].signature
    assert final.content[1].text.startswith("Emulated reply from claude-emu")


def test_unscripted_model_thinks_about_the_prompt(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="claude-anything",
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=user("Summarise the policy"),
    )
    assert message.content[0].type == "thinking"
    assert '"Summarise the policy"' in message.content[0].thinking


def test_thinking_budget_caps_the_thinking_tokens() -> None:
    script = {"models": {"claude-long": {"reasoning": {"text": "hmm " * 3000, "tokens": 5000}}}}
    with Emulator(script, time_scale=0) as emu:
        claude = anthropic.Anthropic(base_url=emu.url, api_key="x", max_retries=0)
        message = claude.messages.create(
            model="claude-long",
            max_tokens=1100,
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=user("hi"),
        )
    assert message.content[0].type == "thinking"
    assert len(message.content[0].thinking.split()) == 1024
    assert 1024 < message.usage.output_tokens <= 1100


def test_adaptive_and_omitted_thinking(claude: anthropic.Anthropic) -> None:
    adaptive = claude.messages.create(
        model="claude-emu", max_tokens=2048, thinking={"type": "adaptive"}, messages=user("hi")
    )
    assert adaptive.content[0].type == "thinking" and adaptive.content[0].thinking == THINKING
    omitted = claude.messages.create(
        model="claude-emu",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024, "display": "omitted"},
        messages=user("hi"),
    )
    assert omitted.content[0].type == "thinking"
    assert omitted.content[0].thinking == "" and omitted.content[0].signature
    assert omitted.usage.output_tokens == adaptive.usage.output_tokens  # billed all the same
    disabled = claude.messages.create(
        model="claude-emu", max_tokens=2048, thinking={"type": "disabled"}, messages=user("hi")
    )
    assert [block.type for block in disabled.content] == ["text"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"max_tokens": 1024, "thinking": {"type": "enabled", "budget_tokens": 1024}}, "max_tokens"),
        ({"max_tokens": 4096, "thinking": {"type": "enabled", "budget_tokens": 500}}, "1024"),
        (
            {
                "max_tokens": 4096,
                "thinking": {"type": "enabled", "budget_tokens": 1024},
                "tools": [{"name": "lookup", "input_schema": {"type": "object"}}],
                "tool_choice": {"type": "any"},
            },
            "tool_choice forces tool use",
        ),
    ],
)
def test_thinking_parameters_are_checked(
    claude: anthropic.Anthropic, extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(anthropic.BadRequestError, match=message):
        claude.messages.create(model="claude-emu", messages=user("hi"), **extra)


def test_a_model_marked_reasoning_false_refuses_thinking(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError, match="does not support thinking"):
        claude.messages.create(
            model="emu-plain",
            max_tokens=2048,
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=user("hi"),
        )


# -- OpenAI reasoning -----------------------------------------------------------------------------


def test_chat_reasoning_model_reports_reasoning_tokens(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(
        model="emu-reasoner", messages=user("What is the refund policy?"), reasoning_effort="medium"
    )
    assert reply.choices[0].message.content == "Refunds take five days."
    usage = reply.usage
    assert usage is not None and usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 40
    assert usage.completion_tokens == 40 + 5  # the visible answer is 5 pieces
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    # the effort scales the reasoning; a model the script does not mark reasons not at all
    high = oai.chat.completions.create(
        model="emu-reasoner", messages=user("refund?"), reasoning_effort="high"
    )
    assert high.usage is not None and high.usage.completion_tokens_details is not None
    assert high.usage.completion_tokens_details.reasoning_tokens == 80
    other = oai.chat.completions.create(
        model="gpt-anything", messages=user("refund?"), reasoning_effort="high"
    )
    assert other.usage is not None and other.usage.completion_tokens_details is not None
    assert other.usage.completion_tokens_details.reasoning_tokens == 0


@pytest.mark.parametrize(("effort", "tokens"), [("none", 0), ("minimal", 10), ("xhigh", 160)])
def test_reasoning_effort_scales_the_reasoning_tokens(oai: openai.OpenAI, effort: str, tokens: int) -> None:
    reply = oai.chat.completions.create(
        model="emu-reasoner", messages=user("refund?"), reasoning_effort=effort
    )  # type: ignore[arg-type]
    assert reply.usage is not None and reply.usage.completion_tokens_details is not None
    assert reply.usage.completion_tokens_details.reasoning_tokens == tokens


def test_responses_reasoning_spends_max_output_tokens(oai: openai.OpenAI) -> None:
    response = oai.responses.create(model="emu-reasoner", input="refund?", max_output_tokens=40)
    assert response.status == "incomplete"
    assert (
        response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    )
    assert response.output_text == ""
    assert response.usage is not None and response.usage.output_tokens_details.reasoning_tokens == 40


def test_chat_reasoning_without_scripted_tokens_counts_the_thinking_text(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(
        model="emu-auto-reasoner", messages=user("hi"), reasoning_effort="low"
    )
    assert reply.usage is not None and reply.usage.completion_tokens_details is not None
    assert reply.usage.completion_tokens_details.reasoning_tokens > 0


def test_chat_reasoning_spends_the_completion_allowance(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(
        model="emu-reasoner", messages=user("refund?"), reasoning_effort="medium", max_completion_tokens=30
    )
    assert reply.choices[0].message.content == ""
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 30


def test_a_model_marked_reasoning_false_refuses_reasoning_effort(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        oai.chat.completions.create(model="emu-plain", messages=user("hi"), reasoning_effort="low")
    assert info.value.code == "unsupported_parameter"
    assert info.value.param == "reasoning_effort"
    with pytest.raises(openai.BadRequestError, match="Supported values"):
        oai.chat.completions.create(model="emu-reasoner", messages=user("hi"), reasoning_effort="huge")  # type: ignore[arg-type]


def test_reasoning_model_refuses_max_tokens_and_temperature(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="Use 'max_completion_tokens' instead") as info:
        oai.chat.completions.create(model="emu-reasoner", messages=user("hi"), max_tokens=100)
    assert info.value.code == "unsupported_parameter"
    with pytest.raises(openai.BadRequestError, match="Only the default \\(1\\) value is supported") as info:
        oai.chat.completions.create(model="emu-reasoner", messages=user("hi"), temperature=0)
    assert info.value.code == "unsupported_value"
    unreasoned = oai.chat.completions.create(
        model="emu-reasoner", messages=user("refund?"), temperature=0, reasoning_effort="none"
    )
    assert unreasoned.choices[0].message.content == "Refunds take five days."
    assert oai.chat.completions.create(model="gpt-anything", messages=user("hi"), max_tokens=5, temperature=0)


def test_responses_reasoning_item_comes_before_the_message(oai: openai.OpenAI) -> None:
    response = oai.responses.create(
        model="emu-reasoner",
        input="What is the refund policy?",
        reasoning={"effort": "medium", "summary": "auto"},
    )
    assert [item.type for item in response.output] == ["reasoning", "message"]
    reasoning = response.output[0]
    assert reasoning.type == "reasoning" and reasoning.id.startswith("rs_")
    assert [part.text for part in reasoning.summary] == [THINKING]
    assert response.output_text == "Refunds take five days."
    assert response.reasoning is not None and response.reasoning.effort == "medium"
    assert response.usage is not None and response.usage.output_tokens_details.reasoning_tokens == 40
    assert response.usage.output_tokens == 45
    # no summary unless asked for; a non-reasoning model has no reasoning item
    bare = oai.responses.create(model="emu-reasoner", input="refund?")
    assert bare.output[0].type == "reasoning" and bare.output[0].summary == []
    other = oai.responses.create(model="gpt-anything", input="refund?")
    assert [item.type for item in other.output] == ["message"]


def test_responses_stream_sends_the_reasoning_summary_first(oai: openai.OpenAI) -> None:
    with oai.responses.stream(
        model="emu-reasoner", input="What is the refund policy?", reasoning={"summary": "auto"}
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds.index("response.reasoning_summary_text.delta") < kinds.index("response.output_text.delta")
    assert "response.reasoning_summary_part.done" in kinds
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.output[0].type == "reasoning"
    assert final.output[0].summary[0].text == THINKING


# -- system_fingerprint ---------------------------------------------------------------------------


def test_default_fingerprint_is_stable_per_model(oai: openai.OpenAI, emu: Emulator) -> None:
    first = oai.chat.completions.create(model="gpt-anything", messages=user("one")).system_fingerprint
    second = oai.chat.completions.create(model="gpt-anything", messages=user("two")).system_fingerprint
    other = oai.chat.completions.create(model="gpt-other", messages=user("one")).system_fingerprint
    assert first == second == "fp_" + hashlib.sha256(b"gpt-anything").hexdigest()[:10]
    assert other != first
    with Emulator(time_scale=0) as fresh:  # another session
        again = openai.OpenAI(base_url=fresh.url + "/v1", api_key="x", max_retries=0)
        assert (
            again.chat.completions.create(model="gpt-anything", messages=user("x")).system_fingerprint
            == first
        )


def test_scripted_fingerprint_simulates_a_silent_model_change() -> None:
    fingerprints = []
    for fingerprint in ("fp_before0001", "fp_after00002"):
        with Emulator({"models": {"emu-a": {"fingerprint": fingerprint}}}, time_scale=0) as emu:
            client = openai.OpenAI(base_url=emu.url + "/v1", api_key="x", max_retries=0)
            reply = client.chat.completions.create(model="emu-a", messages=user("hi"))
            chunks = list(
                client.chat.completions.create(
                    model="emu-a", messages=user("hi"), stream=True, stream_options={"include_usage": True}
                )
            )
            assert reply.model == "emu-a"
            assert {chunk.system_fingerprint for chunk in chunks} == {reply.system_fingerprint}
            fingerprints.append(reply.system_fingerprint)
    assert fingerprints == ["fp_before0001", "fp_after00002"]


def test_fingerprint_follows_the_echoed_model() -> None:
    script = {"models": {"emu-alias": {"echo_model": "emu-alias-2026-03-01"}}}
    with Emulator(script, time_scale=0) as emu:
        client = openai.OpenAI(base_url=emu.url + "/v1", api_key="x", max_retries=0)
        reply = client.chat.completions.create(model="emu-alias", messages=user("hi"))
    assert reply.system_fingerprint == "fp_" + hashlib.sha256(b"emu-alias-2026-03-01").hexdigest()[:10]


# -- Azure OpenAI ---------------------------------------------------------------------------------


def test_azure_client_reaches_chat_embeddings_and_responses(azure: openai.AzureOpenAI, emu: Emulator) -> None:
    before = len(emu.requests)
    chat = azure.chat.completions.create(model="emu-reasoner", messages=user("What is the refund policy?"))
    assert chat.choices[0].message.content == "Refunds take five days."
    assert chat.system_fingerprint == "fp_abc123"
    chunks = list(azure.chat.completions.create(model="emu-reasoner", messages=user("refund?"), stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Refunds take five days."
    vectors = azure.embeddings.create(model="emb-deployment", input=["refund", "refund policy"])
    assert len(vectors.data) == 2 and len(vectors.data[0].embedding) == 64
    response = azure.responses.create(model="emu-reasoner", input="What is the refund policy?")
    assert response.output_text == "Refunds take five days."
    served = [(r.path, r.model, r.status) for r in emu.requests[before:]]
    assert served == [
        ("/openai/deployments/emu-reasoner/chat/completions", "emu-reasoner", 200),
        ("/openai/deployments/emu-reasoner/chat/completions", "emu-reasoner", 200),
        ("/openai/deployments/emb-deployment/embeddings", "emb-deployment", 200),
        ("/openai/responses", "emu-reasoner", 200),
    ]


def test_azure_v1_paths(emu: Emulator) -> None:
    client = openai.OpenAI(base_url=emu.url + "/openai/v1", api_key="x", max_retries=0)
    reply = client.chat.completions.create(model="emu-reasoner", messages=user("refund?"))
    assert reply.choices[0].message.content == "Refunds take five days."
    assert emu.requests[-1].path == "/openai/v1/chat/completions"


def test_azure_deployment_picks_the_model(emu: Emulator) -> None:
    client = openai.AzureOpenAI(
        azure_endpoint=emu.url,
        azure_deployment="emu-reasoner",
        api_key="x",
        api_version="2024-10-21",
        max_retries=0,
    )
    reply = client.chat.completions.create(model="ignored-by-azure", messages=user("refund?"))
    assert reply.choices[0].message.content == "Refunds take five days."
    assert emu.requests[-1].model == "emu-reasoner"


def test_azure_body_without_model_and_the_api_key_header(emu: Emulator) -> None:
    url = emu.url + "/openai/deployments/emu-reasoner/chat/completions?api-version=2024-10-21"
    status, body = post(url, {"messages": user("refund?")}, {"api-key": "x"})
    assert status == 200
    assert json.loads(body)["choices"][0]["message"]["content"] == "Refunds take five days."
    status, body = post(url, {"messages": user("refund?")})
    assert status == 401
    assert json.loads(body)["error"]["code"] == "401"
    status, _ = post(url, {"messages": user("refund?")}, {"Authorization": "Bearer entra-token"})
    assert status == 200


# -- the plugin's LLM judge -----------------------------------------------------------------------


def test_unscripted_judge_call_gets_a_readable_passing_verdict(emu: Emulator) -> None:
    pinned = Judge("emu-judge", provider="openai", base_url=emu.url + "/v1", api_key="x")
    result = judge(
        "We are sorry; a refund is on its way.", "Apologises once and offers a refund", judge=pinned
    )
    assert result.passed, result.message
    assert result.score == 1.0
    assert "Emulated verdict from emu-judge" in result.details["reason"]
    assert emu.requests[-1].where == "judge"


def test_judge_verdict_wins_over_the_scripts_default_not_over_the_models_own() -> None:
    script = {
        "default": "I am an emulated model.",
        "models": {
            "emu-judge": {"rules": [{"match": "(?i)say hello", "reply": "Hello!"}]},
            "emu-own-default": {"default": "Hm."},
        },
    }
    with Emulator(script, time_scale=0) as emu:
        for model in ("emu-judge", "other-judge"):
            pinned = Judge(model, provider="openai", base_url=emu.url + "/v1", api_key="x")
            assert judge("Hello!", "Greets the user", judge=pinned).passed
        ruled = judge("Hi", "Say hello back", judge=Judge("emu-judge", base_url=emu.url + "/v1", api_key="x"))
        own = judge("Hi", "Greets", judge=Judge("emu-own-default", base_url=emu.url + "/v1", api_key="x"))
    assert not ruled.passed
    assert ruled.message.startswith(
        "unreadable verdict from emu-judge: no JSON object in the judge's reply: 'Hello!'"
    )
    assert not own.passed
    assert "'Hm.'" in own.message


def test_anthropic_judge_call_gets_a_verdict_too(emu: Emulator) -> None:
    # the judge's default temperature 0.0 is left out where the SDK takes none (anthropic 2.x)
    pinned = Judge("claude-judge", provider="anthropic", base_url=emu.url, api_key="x")
    result = judge("Sorry about that.", "Apologises", judge=pinned)
    assert result.passed, result.message  # it raised TypeError: unexpected keyword 'temperature'


def test_a_script_rule_fails_the_judge_verdict() -> None:
    script = {
        "models": {
            "emu-judge": {
                "rules": [
                    {
                        "match": "(?s)<rubric>.*refund.*</rubric>",
                        "json": {"pass": False, "score": 0.2, "reason": "No refund is offered."},
                    }
                ]
            }
        }
    }
    with Emulator(script, time_scale=0) as emu:
        pinned = Judge("emu-judge", provider="openai", base_url=emu.url + "/v1", api_key="x")
        failed = judge("We are sorry.", "Offers a refund", judge=pinned)
        passed = judge("We are sorry.", "Apologises", judge=pinned)
    assert not failed.passed
    assert failed.message == "emu-judge: fail, score 0.20: No refund is offered."
    assert passed.passed


def test_a_judge_shaped_prompt_with_tools_is_not_judged(oai: openai.OpenAI) -> None:
    prompt = "<rubric>\nGreets\n</rubric>\n\n<output>\nHi\n</output>"
    tool = {"type": "function", "function": {"name": "grade", "parameters": {"type": "object"}}}
    reply = oai.chat.completions.create(model="gpt-anything", messages=user(prompt), tools=[tool])
    assert (reply.choices[0].message.content or "").startswith("Emulated reply from gpt-anything")


def test_a_prompt_that_only_mentions_a_rubric_gets_the_usual_reply(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(model="gpt-anything", messages=user("What goes in a <rubric> tag?"))
    assert (reply.choices[0].message.content or "").startswith("Emulated reply from gpt-anything")


# -- pathological JSON schemas --------------------------------------------------------------------

NESTED = {
    "type": "object",
    "properties": {
        "grid": {
            "type": "array",
            "minItems": 1000,
            "items": {"type": "array", "minItems": 1000, "items": {"type": "string"}},
        }
    },
    "required": ["grid"],
}
ENDLESS = {
    "$defs": {
        "Node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}}, "required": ["child"]}
    },
    "$ref": "#/$defs/Node",
}
TREE = {
    "$defs": {
        "Node": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                "next": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]},
            },
            "required": ["name", "children", "next"],
            "additionalProperties": False,
        }
    },
    "$ref": "#/$defs/Node",
}


def schema_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "out", "schema": schema}}


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        (NESTED, "the schema at $.grid needs an instance of about"),
        ({"type": "string", "minLength": 10_000_000}, "asks for strings of at least 10000000 characters"),
        ({"type": "array", "minItems": 10**12, "items": {"type": "integer"}}, "asks for at least"),
        (ENDLESS, "nests deeper than 32 levels (the $ref cycle through '#/$defs/Node' never ends)"),
    ],
)
def test_unsatisfiable_schema_is_a_quick_400(
    oai: openai.OpenAI, schema: dict[str, Any], problem: str
) -> None:
    started = time.monotonic()
    with pytest.raises(openai.BadRequestError) as info:
        oai.chat.completions.create(
            model="gpt-anything", messages=user("hi"), response_format=schema_format(schema)
        )
    assert time.monotonic() - started < 2
    assert info.value.param == "response_format"
    assert problem in info.value.message
    assert info.value.message.startswith(
        "Error code: 400 - Invalid schema for response_format: the schema at $"
    )


def test_a_300_byte_request_no_longer_draws_megabytes(emu: Emulator) -> None:
    body = {"model": "gpt-anything", "messages": user("hi"), "response_format": schema_format(NESTED)}
    assert len(json.dumps(body)) < 400
    started = time.monotonic()
    status, reply = post(emu.url + "/v1/chat/completions", body)
    assert time.monotonic() - started < 2
    assert status == 400
    assert len(reply) < 1000


def test_recursive_schema_gets_a_small_valid_instance(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(
        model="gpt-anything", messages=user("hi"), response_format=schema_format(TREE)
    )
    value = json.loads(reply.choices[0].message.content or "")
    jsonschema.validate(value, TREE)
    assert value == {
        "name": "emulated",
        "children": [{"name": "emulated", "children": [], "next": None}],
        "next": None,
    }


def test_a_large_but_bounded_schema_is_answered_under_the_cap(emu: Emulator) -> None:
    schema = {"type": "array", "minItems": 5000, "items": {"type": "string"}}
    body = {"model": "gpt-anything", "messages": user("hi"), "response_format": schema_format(schema)}
    status, reply = post(emu.url + "/v1/chat/completions", body)
    assert status == 200
    content = json.loads(reply)["choices"][0]["message"]["content"]
    assert len(json.loads(content)) == 5000
    assert len(content) <= MAX_INSTANCE_BYTES < len(reply) < 2 * MAX_INSTANCE_BYTES


def test_tool_and_anthropic_schemas_are_bounded_too(oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    tool = {"type": "function", "function": {"name": "fill", "parameters": NESTED}}
    with pytest.raises(openai.BadRequestError) as info:
        oai.chat.completions.create(
            model="gpt-anything", messages=user("hi"), tools=[tool], tool_choice="required"
        )
    assert info.value.param == "tools[0].function.parameters"
    with pytest.raises(
        anthropic.BadRequestError, match=r"Invalid schema for output_config.format: the schema at \$"
    ):
        claude.messages.create(
            model="claude-anything",
            max_tokens=100,
            messages=user("hi"),
            output_config={"format": {"type": "json_schema", "schema": NESTED}},
        )


# -- script keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"reasoning": 3}, "models.m.reasoning: expected true, false, the thinking text or a mapping"),
        ({"reasoning": {"txt": "x"}}, "models.m.reasoning: unknown key 'txt' (did you mean 'text'?"),
        ({"reasoning": {"tokens": 0}}, "models.m.reasoning.tokens: must be >= 1, got 0"),
        ({"reasoning": {"text": 5}}, "models.m.reasoning.text: expected a string, got a number 5"),
        ({"fingerprint": "fp one"}, "models.m.fingerprint: expected a non-empty string without spaces"),
        ({"fingerprint": 12}, "models.m.fingerprint: expected a string, got a number 12"),
        ({"fingerprnt": "fp_x"}, "models.m: unknown key 'fingerprnt' (did you mean 'fingerprint'?"),
    ],
)
def test_bad_reasoning_and_fingerprint_keys_name_the_file_and_key(
    model: dict[str, Any], message: str
) -> None:
    with pytest.raises(ScriptError) as info:
        Script.from_dict({"models": {"m": model}}, "emulator.yaml")
    assert str(info.value).startswith(f"emulator.yaml: {message}")


def test_reasoning_shorthands() -> None:
    script = Script.from_dict({"models": {"a": {"reasoning": True}, "b": {"reasoning": "Let me think."}}})
    a, b = script.model("a"), script.model("b")
    assert a is not None and a.reasoning is not None and a.reasoning.enabled and a.reasoning.text is None
    assert b is not None and b.reasoning is not None and b.reasoning.text == "Let me think."
