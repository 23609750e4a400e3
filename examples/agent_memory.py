"""A LangChain 1.x agent whose chat history ctxcomp compresses on every model call, offline.

    python examples/agent_memory.py [--budget 700] [--model gpt-4o-mini]

What runs:
  * ``create_agent`` with one tool, ``search_handbook`` (the embedded hybrid retriever over
    examples/data/observatory), and a checkpointer, so the conversation grows turn by turn;
  * a small local chat model stands in for the LLM: it calls the tool for each new
    question, then answers from the tool result, and reports its real prompt token count as
    ``usage_metadata``; ``LedgerCallbackHandler`` records that usage;
  * the same conversation runs twice: plain, and with ``CompressHistoryMiddleware``
    (system prompt and the latest turns verbatim, older turns compressed by relevance to
    the newest question, tool calls kept with their results, every role kept).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from ctxcomp import count_tokens
from ctxcomp.integrations.langchain import CompressHistoryMiddleware, LedgerCallbackHandler
from ctxcomp.reporting.ledger import Ledger
from ctxcomp.retrievers import HybridRetriever

DATA = Path(__file__).resolve().parent / "data" / "observatory"
QUESTIONS = [
    "When are the public nights?",
    "How much is entry for a student?",
    "Can my eight-year-old come along?",
    "How do I get there from the station?",
    "What should I wear?",
    "How much does membership cost for a family?",
    "What does error code XJ-17 mean?",
    "When is the meteor watch?",
    "Going back to my first question: what time do doors open in winter?",
]
SYSTEM = "You help visitors of the Lindqvist Hill Observatory. Use the search_handbook tool."
INDEX = HybridRetriever.from_folder(DATA, index_dir=Path(tempfile.gettempdir()) / "ctxcomp-example-index")


@tool
def search_handbook(query: str) -> str:
    """Search the observatory handbook."""
    return "\n\n".join(c.text for c in INDEX.retrieve(query, k=2))


class LocalToolModel(BaseChatModel):
    """Stand-in LLM: calls search_handbook for a new question, then answers with the tool
    result's sentence sharing most words with the question; reports real prompt tokens."""

    model_name: str = "gpt-4o-mini"

    @property
    def _llm_type(self) -> str:
        return "local-tool-model"

    def bind_tools(self, tools: Any, **kwargs: Any) -> LocalToolModel:
        return self

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        question = next(m.text for m in reversed(messages) if isinstance(m, HumanMessage))
        last = messages[-1]
        if isinstance(last, HumanMessage):
            reply = AIMessage("", tool_calls=[{"name": "search_handbook", "args": {"query": question},
                                               "id": f"call_{len(messages)}", "type": "tool_call"}])
        else:
            words = set(question.lower().split())
            sentences = [s.strip() for s in last.text.replace("\n", " ").split(". ") if s.strip()]
            reply = AIMessage(max(sentences, key=lambda s: len(words & set(s.lower().split())), default=""))
        tokens_in = sum(count_tokens(m.text, self.model_name) for m in messages)
        tokens_in += sum(count_tokens(str(m.tool_calls), self.model_name) for m in messages
                         if isinstance(m, AIMessage) and m.tool_calls)
        out = count_tokens(reply.text, self.model_name)
        reply = reply.model_copy(update={
            "response_metadata": {"model_name": self.model_name},
            "usage_metadata": {"input_tokens": tokens_in, "output_tokens": out, "total_tokens": tokens_in + out}})
        return ChatResult(generations=[ChatGeneration(message=reply)])


def converse(middleware: list[Any], model_name: str, questions: list[str]
             ) -> tuple[Ledger, list[str], list[BaseMessage]]:
    """Ask every question on one thread; return the usage, the answers, the final state."""
    log = Ledger()
    agent = create_agent(LocalToolModel(model_name=model_name), [search_handbook], system_prompt=SYSTEM,
                         middleware=middleware, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "visitor"}, "callbacks": [LedgerCallbackHandler(log)]}
    answers: list[str] = []
    state: dict[str, Any] = {}
    for question in questions:
        state = agent.invoke({"messages": [HumanMessage(question)]}, config=config)
        answers.append(state["messages"][-1].text)
    return log, answers, state["messages"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=700, help="max history tokens per model call")
    parser.add_argument("--model", default="gpt-4o-mini", help="target model (tokenizer and price)")
    parser.add_argument("--keep-recent", type=int, default=4, help="latest messages kept verbatim")
    parser.add_argument("--questions", type=int, default=len(QUESTIONS), help="how many questions to ask")
    args = parser.parse_args()
    questions = QUESTIONS[: max(1, args.questions)]

    plain_log, plain_answers, history = converse([], args.model, questions)
    # empty="drop": an older exchange none of whose text is relevant leaves the history whole
    # (a tool call always together with its result); the others keep their roles.
    middleware = CompressHistoryMiddleware(args.budget, model=args.model, keep_recent=args.keep_recent,
                                           empty="drop")
    small_log, small_answers, _ = converse([middleware], args.model, questions)

    kinds = sorted({type(m).__name__ for m in history})
    print(f"{len(questions)} questions, {len(history)} messages in the final history ({', '.join(kinds)})\n")
    per_call = zip(plain_log.usage(), small_log.usage(), strict=True)
    for n, (before, after) in enumerate(per_call, start=1):
        if n % 2 == 0:  # the answering call of each question (the one that sees the tool result)
            print(f"question {n // 2}: LLM input tokens {before.input_tokens:>5} -> {after.input_tokens:>5}")
    plain, small = plain_log.usage_totals(), small_log.usage_totals()
    saved = plain.input_tokens - small.input_tokens
    print(f"\nLLM input tokens over {plain.calls} model calls: {plain.input_tokens} -> {small.input_tokens} "
          f"(saved {saved}, {saved / plain.input_tokens:.0%})")
    dollars = plain.cost - small.cost
    print(f"dollars ({args.model}): ${plain.cost:.6f} -> ${small.cost:.6f}; saved ${dollars:.6f} "
          f"= ${dollars / len(questions) * 1e6:,.2f} per million conversation turns")
    same = sum(a == b for a, b in zip(plain_answers, small_answers, strict=True))
    print(f"answers identical with and without compression: {same}/{len(questions)}")
    ledger = middleware.ledger.totals()
    print(f"ctxcomp ledger: {ledger.requests} compressions, history tokens {ledger.tokens_in} -> {ledger.tokens_out}")
    assert all(isinstance(m, (HumanMessage, AIMessage, ToolMessage)) for m in history)


if __name__ == "__main__":
    main()
