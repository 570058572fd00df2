"""Chat templates ragsys supplies for models whose files carry none.

Gemma 3 270M ships as a *base* model: its GGUF file has no chat template, because it was never
instruction-tuned. `GEMMA` is Gemma's turn format, the one its instruction-tuned sibling reads
(the system text opens the first user turn; the model's turn is "model" and ends with
`<end_of_turn>`), written here so the base model can be fine-tuned and prompted as a chat model.
"""

GEMMA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{% set head = messages[0]['content'] + '\n\n' %}{% set turns = messages[1:] %}"
    "{% else %}{% set head = '' %}{% set turns = messages %}{% endif %}"
    "{% for m in turns %}"
    "{{ '<start_of_turn>' + ('model' if m['role'] == 'assistant' else m['role']) + '\n' }}"
    "{{ (head if loop.first else '') + m['content'] | trim }}{{ '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)
TURN_ENDS = ("<end_of_turn>",)  # tokens that end a model turn in these templates: generation stops there
