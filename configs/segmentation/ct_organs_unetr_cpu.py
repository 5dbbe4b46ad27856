# Abdominal organs in CT, sized for one CPU core: MONAI UNETR trained on one labelled CT and scored
# on another scan from another scanner (both TotalSegmentator test cases in
# ../shared/data/medical/totalseg_ct_mr_examples, labels are TotalSegmentator outputs, origin of
# the scans undocumented; see docs/benchmarks.md for what this can and cannot show).
#   train: example_ct_sm.nii.gz + example_seg.nii.gz (122 x 101 x 30 voxels of 3 mm)
#   held apart: the 20-slice DICOM series example_ct_dicom/ + example_seg_dicom.nii.gz (0.98 x 0.98
#   x 2 mm), read as a DICOM series and resampled, with its label map, to 3 mm
# UNETR's transformer has ViT-Tiny's widths, so the ViT of
# configs/medical/pneumonia_faceted_vit_tiny_cpu.py starts it (blocks, final norm and the patch
# embedding inflated to 3D); its 3D position embedding and convolutional decoder start from scratch:
#   facetvlp finetune configs/segmentation/ct_organs_unetr_cpu.py --from WORK_DIR_OF_PRETRAINING
# Without --from everything starts from random weights.
_base_ = ["../_base_/segmentation_runtime.py"]

_ref = "../shared/data/medical/totalseg_ct_mr_examples/tests/reference_files"
_classes = ["background", "liver", "spleen", "stomach", "aorta", "vertebra"]
# TotalSegmentator v2 "total" label ids; 26-50 are the vertebrae S1..C1
_values = dict(liver=5, spleen=1, stomach=6, aorta=52, vertebra=list(range(26, 51)))
_volume = dict(type="NiftiSegDataset", seg_classes=_classes, label_values=_values,
               spacing=(3.0, 3.0, 3.0), intensity_range=(-200.0, 300.0))
_patch = (32, 64, 64)  # (D, H, W) voxels of 3 mm

model = dict(
    type="VolumeSegmentationModel",
    net="UNETR",
    in_channels=1,
    num_classes=len(_classes),
    roi_size=_patch,
    net_options=dict(feature_size=16, hidden_size=192, mlp_dim=768, num_heads=3),
    encoder="full",
    sw_batch_size=2,
)
train_data = dict(
    # the one training scan twice per epoch: two differently seeded patches per batch
    dataset=dict(type="LabelFraction", fraction=1.0, seed=0, dataset=dict(
        _volume, items=[dict(image=f"{_ref}/example_ct_sm.nii.gz", label=f"{_ref}/example_seg.nii.gz",
                             group="ct_sm")] * 2,
        transforms=[dict(type="VolumePatchd", size=_patch, pos_fraction=0.67)])),
    batch_size=2,
    num_workers=0,
)
eval = dict(seg=dict(type="SegmentationEvaluator", include_background=False, batch_size=1, overlays=1,
                     dataset=dict(_volume, items=[dict(image=f"{_ref}/example_ct_dicom",
                                                       label=f"{_ref}/example_seg_dicom.nii.gz")])))
optim = dict(lr=1e-3)
schedule = dict(max_steps=150, warmup_steps=10)
engine = dict(threads=1, log_every=10, seed=0)
work_dir = "work_dirs/segmentation/ct_organs_unetr_cpu"
