"""RAG with LlamaIndex, offline: VectorStoreIndex (shipped MiniLM) -> ctxcomp postprocessor -> LLM.

    python examples/llamaindex_rag.py [--budget 250] [--model gpt-4o-mini]

What runs:
  * ``SimpleDirectoryReader`` reads examples/data/observatory; ``VectorStoreIndex`` embeds it
    with ``MiniLMEmbedding`` (the MiniLM shipped on PyPI: no model hub, no API key);
  * two query engines over the same index, one with ``CtxcompPostprocessor``;
  * ``MockLLM`` stands in for the LLM. It answers with the prompt it was given, so the
    tokens counted here are exactly what an LLM would have been sent;
  * ``CompressingRetriever`` shows retrieve-then-compress in one call on the same retriever.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from llama_index.core import Settings, SimpleDirectoryReader, VectorStoreIndex
from llama_index.core.llms import MockLLM

from ctxcomp import Budget, Pipeline, count_tokens
from ctxcomp.integrations.llamaindex import CtxcompPostprocessor, MiniLMEmbedding
from ctxcomp.pricing import cost
from ctxcomp.retrievers import CompressingRetriever

DATA = Path(__file__).resolve().parent / "data" / "observatory"
QUESTIONS = [
    ("What should I do when the mount shows error code XJ-42?", "parked position"),
    ("How much does membership cost for a student?", "200 crowns"),
    ("When is the annual meteor watch?", "twelfth of August"),
    ("How many visitors are allowed in the main dome?", "twenty"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=250, help="max context tokens after compression")
    parser.add_argument("--model", default="gpt-4o-mini", help="target model (tokenizer and price)")
    parser.add_argument("--k", type=int, default=6, help="chunks retrieved per question")
    args = parser.parse_args()

    Settings.embed_model = MiniLMEmbedding()  # never reaches a hub
    Settings.llm = MockLLM()
    Settings.chunk_size = 160
    documents = SimpleDirectoryReader(str(DATA), required_exts=[".md"]).load_data()
    index = VectorStoreIndex.from_documents(documents)
    pipeline = Pipeline(["embedding"], Budget(max_tokens=args.budget, model=args.model))
    postprocessor = CtxcompPostprocessor(pipeline=pipeline)
    plain = index.as_query_engine(similarity_top_k=args.k)
    compressed = index.as_query_engine(similarity_top_k=args.k, node_postprocessors=[postprocessor])

    print(f"{len(documents)} documents; k={args.k}, budget {args.budget} tokens\n")
    total_before = total_after = 0
    for question, expected in QUESTIONS:
        full_prompt = str(plain.query(question))  # MockLLM returns the prompt it received
        small_prompt = str(compressed.query(question))
        before, after = count_tokens(full_prompt, args.model), count_tokens(small_prompt, args.model)
        total_before, total_after = total_before + before, total_after + after
        print(f"Q: {question}")
        print(f"   LLM prompt tokens {before:>5} -> {after:>5}   answer kept: {expected in small_prompt} "
              f"(uncompressed: {expected in full_prompt})")
    saved = total_before - total_after
    dollars = cost(args.model, total_before) - cost(args.model, total_after)
    print(f"\nLLM prompt tokens over {len(QUESTIONS)} questions: {total_before} -> {total_after} "
          f"(saved {saved}, {saved / total_before:.0%})")
    print(f"dollars ({args.model}): saved ${dollars:.6f} = ${dollars / len(QUESTIONS) * 1e6:,.2f} per million questions")

    one_call = CompressingRetriever(index.as_retriever(similarity_top_k=args.k), pipeline)
    ctx = one_call.retrieve(QUESTIONS[0][0])
    print(f"\nCompressingRetriever, one call: {ctx.tokens_in} -> {ctx.tokens_out} context tokens "
          f"from {len(ctx.chunks)} nodes; first kept: {ctx.chunks[0].text[:70]!r}...")


if __name__ == "__main__":
    main()
