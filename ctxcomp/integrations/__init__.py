"""Framework components: ``ctxcomp.integrations.langchain`` (extra ``langchain``) and
``ctxcomp.integrations.llamaindex`` (extra ``llamaindex``).

Import the submodule you need; nothing here imports a framework. Each submodule is a
thin adapter over ctxcomp's public API (the logic lives in ``ctxcomp.memory``,
``ctxcomp.retrievers`` and the pipeline); ``usage`` holds the framework-neutral record of
real LLM usage the callbacks write.
"""
