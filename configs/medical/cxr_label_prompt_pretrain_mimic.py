# Label-prompt baseline for cxr_faceted_pretrain_mimic.py: same model, data, loss and schedule,
# but each image's text is one prompt per positive label ("a chest x-ray showing edema").
_base_ = ["./cxr_faceted_pretrain_mimic.py"]

train_data = dict(dataset=dict(text="label", knowledge=None))
work_dir = "work_dirs/medical/cxr_label_prompt_pretrain_mimic"
