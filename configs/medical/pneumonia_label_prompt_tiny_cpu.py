# The label-prompt baseline for pneumonia_faceted_tiny_cpu.py: identical model, data, split,
# loss, steps and seed; the only change is the training text, one prompt per label
# ("a chest x-ray showing pneumonia") instead of knowledge facets. Run from the repo root:
#   facetvlp train configs/medical/pneumonia_label_prompt_tiny_cpu.py
_base_ = ["./pneumonia_faceted_tiny_cpu.py"]

train_data = dict(dataset=dict(text="label", knowledge=None))
work_dir = "work_dirs/medical/pneumonia_label_prompt_tiny_cpu"
