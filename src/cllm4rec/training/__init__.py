"""Training recipes: the pretraining and finetuning loops over a run folder (docs/DESIGN.md §2-§4).

``runner`` is what the CLI calls (``run_pretrain_stage``, ``run_finetune_stage``, ``run_train``);
``pretrain`` and ``finetune`` hold the two loops, ``objectives`` the three losses, ``engine`` one pass of an
objective, ``epoch`` what closes every epoch, ``state`` the typed stage state and the resume function.
"""
