"""The OpenAI wire format around rag.chat and the embedder.

- ``models``: model ids are 'rag-<collection>', so a chat client's model picker picks the
  collection;
- ``chat``: parameter checks, chat.completion objects and their server-sent events;
- ``tasks``: chat frontends' background prompts (rag.tasks) answered as OpenAI replies;
- ``sources``: citations as Open WebUI's source events, and which requests get them;
- ``embeddings``: vectors from the service's embedder, as floats or base64;
- ``schemas``: the request and response bodies.

Refusals are ``rag.api.errors.OpenAIError``, with OpenAI's status, type, param and code.
"""
