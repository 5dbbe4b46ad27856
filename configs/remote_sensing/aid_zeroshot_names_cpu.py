# The baseline of aid_zeroshot_knowledge_cpu.py at the same budget: every training image is
# captioned with its class name in the three templates ("An aerial image of dense residential.")
# instead of its knowledge entry. Model, data, steps and evaluators are the same (both prompt
# sets are scored for both recipes). Run from the repository root:
#   facetvlp train configs/remote_sensing/aid_zeroshot_names_cpu.py
_base_ = ["./aid_zeroshot_knowledge_cpu.py"]

train_data = dict(dataset=dict(knowledge=dict(type="OSMSceneKnowledge", captions="names")))
work_dir = "work_dirs/remote_sensing/aid_zeroshot_names_cpu"
