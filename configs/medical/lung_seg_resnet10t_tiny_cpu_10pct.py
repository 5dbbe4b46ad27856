# lung_seg_resnet10t_tiny_cpu.py with labels for 10 % of the training patients (LabelFraction,
# whole patients, seeded by `_draw_seed`; change it for another draw). 15 images are fewer than the
# base's batch of 16: batch 8 for twice the steps, so the budget (4,800 samples seen) is the same.
_base_ = ["lung_seg_resnet10t_tiny_cpu.py"]

_draw_seed = 0
train_data = dict(dataset=dict(_delete_=True, type="LabelFraction", fraction=0.1, seed=_draw_seed,
                               dataset={{_base_.train_data.dataset}}),
                  batch_size=8)
schedule = dict(max_steps=600, warmup_steps=40)
work_dir = "work_dirs/lung_seg_resnet10t_tiny_cpu_10pct"
