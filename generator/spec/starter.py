"""The commented spec that ``dspy-forge init`` writes."""

STARTER_SPEC = """\
# yaml-language-server: $schema=https://dspy-forge.dev/schema/spec-v1.json
# A dspy-forge spec: one service of DSPy programs. Validate with
#   dspy-forge validate service.yaml
# and generate the project with
#   dspy-forge generate service.yaml --out my-service
version: 1

service:
  name: my-service            # distribution name; the package is my_service
  title: My Service
  description: Answers questions.
  version: 0.1.0

lm:
  model: openai/gpt-4o-mini   # any LiteLLM model string
  api_key_env: OPENAI_API_KEY # the env var that holds the key
  # api_base: http://127.0.0.1:8001/v1
  # temperature: 0.0
  # max_tokens: 1024
  cache: false

signatures:
  AnswerQuestion:
    instructions: Answer the question briefly.
    inputs:
      question: {type: str, description: The question.}
    outputs:
      answer: {type: str, description: The answer.}

# tools:
#   search:
#     description: Search the web.
#     args:
#       query: {type: str, description: What to look for.}
#     returns: str

programs:
  qa:
    module: ChainOfThought    # Predict | ChainOfThought | ReAct | BestOfN | Custom
    signature: AnswerQuestion # or inline: "question -> answer"
    stream:
      - field: answer         # stream this output token by token
    status:                   # null or missing: stay silent
      lm_start: Thinking...
"""
