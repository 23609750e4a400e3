"""RAG with LangChain, offline: embedded hybrid retriever -> ctxcomp compressor -> chat model.

    python examples/langchain_rag.py [--budget 250] [--model gpt-4o-mini]

What runs:
  * ``HybridRetriever`` indexes examples/data/observatory (BM25 + the shipped MiniLM), with
    the index saved in a temp folder and reused while the files are unchanged;
  * ``ContextualCompressionRetriever`` (langchain-classic) wraps it with ``CtxcompCompressor``;
  * a small local chat model stands in for the LLM: it reports the real prompt token count
    as ``usage_metadata`` (as a provider would), and ``LedgerCallbackHandler`` records it.
Each question is asked twice, with and without compression; the script prints what the
LLM received and the tokens and dollars saved.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompts import ChatPromptTemplate

from ctxcomp import Budget, Pipeline, count_tokens
from ctxcomp.integrations.langchain import CtxcompCompressor, CtxcompRetriever, LedgerCallbackHandler
from ctxcomp.reporting.ledger import Ledger
from ctxcomp.retrievers import HybridRetriever

DATA = Path(__file__).resolve().parent / "data" / "observatory"
QUESTIONS = [
    ("What does error code XJ-42 mean?", "lost its home position"),
    ("How much does a family membership cost?", "650 crowns"),
    ("Until what time does the cafe serve hot chocolate on public nights?", "22:00"),
    ("When was the 60 cm reflector installed?", "1994"),
]
PROMPT = ChatPromptTemplate.from_messages([
    ("system", "Answer the question using only the context below.\n\nContext:\n{context}"),
    ("human", "{question}"),
])


class LocalEchoModel(BaseChatModel):
    """A stand-in LLM: answers with the context sentence sharing most words with the
    question, and reports the prompt's token count for ``model_name`` as usage."""

    model_name: str = "gpt-4o-mini"

    @property
    def _llm_type(self) -> str:
        return "local-echo"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        question = set(messages[-1].text.lower().split())
        sentences = [s.strip() for m in messages[:-1] for s in m.text.split(". ") if s.strip()]
        answer = max(sentences, key=lambda s: len(question & set(s.lower().split())), default="")
        tokens_in = sum(count_tokens(m.text, self.model_name) for m in messages)
        out = count_tokens(answer, self.model_name)
        reply = AIMessage(answer, response_metadata={"model_name": self.model_name},
                          usage_metadata={"input_tokens": tokens_in, "output_tokens": out,
                                          "total_tokens": tokens_in + out})
        return ChatResult(generations=[ChatGeneration(message=reply)])


def answer(retriever: Any, llm: LocalEchoModel, question: str, handler: LedgerCallbackHandler) -> str:
    docs = retriever.invoke(question)
    context = "\n\n".join(d.page_content for d in docs)
    prompt = PROMPT.invoke({"context": context, "question": question})
    llm.invoke(prompt, config={"callbacks": [handler]})
    return context


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=250, help="max context tokens after compression")
    parser.add_argument("--model", default="gpt-4o-mini", help="target model (tokenizer and price)")
    parser.add_argument("--k", type=int, default=6, help="chunks retrieved per question")
    args = parser.parse_args()

    index = HybridRetriever.from_folder(DATA, index_dir=Path(tempfile.gettempdir()) / "ctxcomp-example-index")
    base = CtxcompRetriever(index=index, k=args.k)
    compressor = CtxcompCompressor(pipeline=Pipeline(["embedding"], Budget(max_tokens=args.budget, model=args.model)))
    compressed = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=base)
    llm = LocalEchoModel(model_name=args.model)
    plain_log, small_log = Ledger(), Ledger()

    print(f"{len(index.chunks)} chunks from {len(index.files)} files; k={args.k}, budget {args.budget} tokens\n")
    for question, expected in QUESTIONS:
        full = answer(base, llm, question, LedgerCallbackHandler(plain_log))
        kept = answer(compressed, llm, question, LedgerCallbackHandler(small_log))
        before, after = plain_log.usage()[-1], small_log.usage()[-1]
        print(f"Q: {question}")
        print(f"   LLM input tokens {before.input_tokens:>5} -> {after.input_tokens:>5}   "
              f"answer kept: {expected in kept} (uncompressed: {expected in full})")
    plain, small = plain_log.usage_totals(), small_log.usage_totals()
    saved = plain.input_tokens - small.input_tokens
    dollars = plain.cost - small.cost
    print(f"\nLLM input tokens over {plain.calls} questions: {plain.input_tokens} -> {small.input_tokens} "
          f"(saved {saved}, {saved / plain.input_tokens:.0%})")
    print(f"dollars ({args.model}): ${plain.cost:.6f} -> ${small.cost:.6f}; saved ${dollars:.6f} "
          f"= ${dollars / plain.calls * 1e6:,.2f} per million questions")


if __name__ == "__main__":
    main()
