# As cxr_faceted_pretrain_mimic.py with the MiniLM-L6 text tower frozen and used without a
# projection: only the image tower learns to meet the language model's existing text space,
# which keeps unseen prompts meaningful and halves the step cost.
_base_ = ["./cxr_faceted_pretrain_mimic.py"]

model = dict(proj=dict(_delete_=True, image="linear", text="none"), embed_dim=384, trainable=dict(text="none"))
work_dir = "work_dirs/medical/cxr_faceted_pretrain_mimic_frozen_text"
