"""Every public name of the original maskrcnn-benchmark importable from its module path here, with a
compatible signature; and the behaviour of the names added for that.

ORIGINAL was extracted once from the original's git tree (its files parsed with `ast`, not imported):
per module, the public top-level classes and functions it defines, the public values (None: their
use is not a call this walk can check; `nms` was the compiled op), and the names its package
`__init__`s and `__all__` re-export. A callable maps to its positional parameters; a class to its
`__init__`'s, "self" first (torch's where it defined none).

Compatible: the callable takes the original's positional parameters in the same order under the
same names (callers pass some by keyword) and requires nothing more. The POSITIONAL_ONLY names were
autograd `Function.apply`s, which take positions only: their parameter names are not compared. A
class decorated with `cfg_constructor` takes its parts or the original's (cfg, ...): its
`__init__.from_cfg` is checked.

Not walked: maskrcnn_benchmark/csrc (C++), and data/datasets/evaluation/cityscapes/eval_instances.py,
the original's port of the official Cityscapes script (15 camelCase helpers over that script's own
data structures); the evaluation is rebuilt in matching.py and average_precision.py there, and its
entry points (abs_cityscapes_evaluation, do_cityscapes_evaluation) are walked.
"""

import importlib
import inspect
import itertools
import math
import os
import re
from typing import Dict, List, Optional

import numpy as np
import pytest
import torch
from PIL import Image

from maskrcnn_benchmark.structures.bounding_box import BoxList

# module:, then its names: `class Name(params of __init__ after self)`, `function(params)`, `VALUE`;
# a "/" ends positional-only parameters (an autograd Function.apply: the names are not compared).
ORIGINAL_TEXT = """
maskrcnn_benchmark:
maskrcnn_benchmark.config:
    cfg;
maskrcnn_benchmark.config.defaults:
maskrcnn_benchmark.config.paths_catalog:
    class DatasetCatalog(); class ModelCatalog();
maskrcnn_benchmark.data:
    make_data_loader(cfg, is_train, is_distributed, start_iter, is_for_period);
maskrcnn_benchmark.data.build:
    build_dataset(dataset_list, transforms, dataset_catalog, is_train);
    make_batch_data_sampler(dataset, sampler, aspect_grouping, images_per_batch, num_iters, start_iter);
    make_data_loader(cfg, is_train, is_distributed, start_iter, is_for_period);
    make_data_sampler(dataset, shuffle, distributed);
maskrcnn_benchmark.data.collate_batch:
    class BBoxAugCollator(); class BatchCollator(size_divisible);
maskrcnn_benchmark.data.datasets:
    class CityScapesDataset(img_dir, ann_dir, split, mode, transforms, min_area, mini);
    class AbstractDataset(); class COCODataset(ann_file, root, remove_images_without_annotations, transforms);
    class ConcatDataset(datasets); class PascalVOCDataset(data_dir, split, use_difficult, transforms);
maskrcnn_benchmark.data.datasets.abstract:
    class AbstractDataset();
maskrcnn_benchmark.data.datasets.coco:
    class COCODataset(ann_file, root, remove_images_without_annotations, transforms);
    has_valid_annotation(anno); min_keypoints_per_image;
maskrcnn_benchmark.data.datasets.concat_dataset:
    class ConcatDataset(datasets);
maskrcnn_benchmark.data.datasets.evaluation:
    abs_cityscapes_evaluation(dataset, predictions, box_only, output_folder, iou_types, expected_results,
        expected_results_sigma_tol);
    coco_evaluation(dataset, predictions, output_folder, box_only, iou_types, expected_results,
        expected_results_sigma_tol);
    evaluate(dataset, predictions, output_folder);
    voc_evaluation(dataset, predictions, output_folder, box_only);
maskrcnn_benchmark.data.datasets.cityscapes:
    class CityScapesDataset(img_dir, ann_dir, split, mode, transforms, min_area, mini);
maskrcnn_benchmark.data.datasets.evaluation.cityscapes:
    abs_cityscapes_evaluation(dataset, predictions, box_only, output_folder, iou_types, expected_results,
        expected_results_sigma_tol);
    do_cityscapes_evaluation(dataset, predictions, box_only, output_folder, iou_types, expected_results,
        expected_results_sigma_tol);
maskrcnn_benchmark.data.datasets.evaluation.cityscapes.cityscapes_eval:
    do_cityscapes_evaluation(dataset, predictions, box_only, output_folder, iou_types, expected_results,
        expected_results_sigma_tol);
maskrcnn_benchmark.data.datasets.evaluation.coco:
    coco_evaluation(dataset, predictions, output_folder, box_only, iou_types, expected_results,
        expected_results_sigma_tol);
    do_orig_coco_evaluation(dataset, predictions, box_only, output_folder, iou_types, expected_results,
        expected_results_sigma_tol);
    do_wrapped_coco_evaluation(dataset, predictions, box_only, output_folder, iou_types, expected_results,
        expected_results_sigma_tol);
maskrcnn_benchmark.data.datasets.evaluation.coco.abs_to_coco:
    convert_abstract_to_coco(dataset, num_workers, chunksize); masks_to_rles(masks_tensor);
    process_single_image(args);
maskrcnn_benchmark.data.datasets.evaluation.coco.coco_eval:
    class COCOResults(); check_expected_results(results, expected_results, sigma_tol);
    do_coco_evaluation(dataset, predictions, box_only, output_folder, iou_types, expected_results,
        expected_results_sigma_tol);
    evaluate_box_proposals(predictions, dataset, thresholds, area, limit);
    evaluate_predictions_on_coco(coco_gt, coco_results, json_result_file, iou_type);
    prepare_for_coco_detection(predictions, dataset); prepare_for_coco_keypoint(predictions, dataset);
    prepare_for_coco_segmentation(predictions, dataset);
maskrcnn_benchmark.data.datasets.evaluation.coco.coco_eval_wrapper:
    do_coco_evaluation(dataset, predictions, box_only, output_folder, iou_types, expected_results,
        expected_results_sigma_tol);
maskrcnn_benchmark.data.datasets.evaluation.voc:
    do_voc_evaluation(dataset, predictions, output_folder, logger);
    voc_evaluation(dataset, predictions, output_folder, box_only);
maskrcnn_benchmark.data.datasets.evaluation.voc.voc_eval:
    calc_detection_voc_ap(prec, rec, use_07_metric);
    calc_detection_voc_prec_rec(gt_boxlists, pred_boxlists, iou_thresh);
    do_voc_evaluation(dataset, predictions, output_folder, logger);
    eval_detection_voc(pred_boxlists, gt_boxlists, iou_thresh, use_07_metric);
maskrcnn_benchmark.data.datasets.list_dataset:
    class ListDataset(image_lists, transforms);
maskrcnn_benchmark.data.datasets.voc:
    class PascalVOCDataset(data_dir, split, use_difficult, transforms);
maskrcnn_benchmark.data.samplers:
    class DistributedSampler(dataset, num_replicas, rank, shuffle);
    class GroupedBatchSampler(sampler, group_ids, batch_size, drop_uneven);
    class IterationBasedBatchSampler(batch_sampler, num_iterations, start_iter);
maskrcnn_benchmark.data.samplers.distributed:
    class DistributedSampler(dataset, num_replicas, rank, shuffle);
maskrcnn_benchmark.data.samplers.grouped_batch_sampler:
    class GroupedBatchSampler(sampler, group_ids, batch_size, drop_uneven);
maskrcnn_benchmark.data.samplers.iteration_based_batch_sampler:
    class IterationBasedBatchSampler(batch_sampler, num_iterations, start_iter);
maskrcnn_benchmark.data.transforms:
    class Compose(transforms); class Normalize(mean, std, to_bgr255); class RandomHorizontalFlip(prob);
    class Resize(min_size, max_size); class ToTensor(); build_transforms(cfg, is_train);
maskrcnn_benchmark.data.transforms.build:
    build_transforms(cfg, is_train);
maskrcnn_benchmark.data.transforms.transforms:
    class ColorJitter(brightness, contrast, saturation, hue); class Compose(transforms);
    class Normalize(mean, std, to_bgr255); class RandomHorizontalFlip(prob); class RandomVerticalFlip(prob);
    class Resize(min_size, max_size); class ToTensor();
maskrcnn_benchmark.engine:
maskrcnn_benchmark.engine.bbox_aug:
    im_detect_bbox(model, images, target_scale, target_max_size, device);
    im_detect_bbox_aug(model, images, device);
    im_detect_bbox_hflip(model, images, target_scale, target_max_size, device);
    im_detect_bbox_scale(model, images, target_scale, target_max_size, device, hflip);
maskrcnn_benchmark.engine.inference:
    compute_on_dataset(model, data_loader, device, bbox_aug, timer);
    inference(model, data_loader, dataset_name, iou_types, box_only, bbox_aug, device, expected_results,
        expected_results_sigma_tol, output_folder);
maskrcnn_benchmark.engine.trainer:
    do_train(cfg, model, data_loader, data_loader_val, optimizer, scheduler, checkpointer, device,
        checkpoint_period, test_period, arguments);
    reduce_loss_dict(loss_dict);
maskrcnn_benchmark.layers:
    class BatchNorm2d(num_features, eps, momentum, affine, track_running_stats, device, dtype);
    class Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
        device, dtype);
    class ConvTranspose2d(in_channels, out_channels, kernel_size, stride, padding, output_padding, groups, bias,
        dilation, padding_mode, device, dtype);
    class DFConv2d(in_channels, out_channels, with_modulated_dcn, kernel_size, stride, groups, dilation,
        deformable_groups, bias);
    class DeformConv(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
        deformable_groups, bias);
    class DeformRoIPooling(spatial_scale, out_size, out_channels, no_trans, group_size, part_size,
        sample_per_part, trans_std);
    class DeformRoIPoolingPack(spatial_scale, out_size, out_channels, no_trans, group_size, part_size,
        sample_per_part, trans_std, deform_fc_channels);
    class FrozenBatchNorm2d(n);
    class ModulatedDeformConv(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
        deformable_groups, bias);
    class ModulatedDeformConvPack(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
        deformable_groups, bias);
    class ModulatedDeformRoIPoolingPack(spatial_scale, out_size, out_channels, no_trans, group_size, part_size,
        sample_per_part, trans_std, deform_fc_channels);
    class ROIAlign(output_size, spatial_scale, sampling_ratio); class ROIPool(output_size, spatial_scale);
    class SigmoidFocalLoss(gamma, alpha);
    deform_conv(input, offset, weight, stride, padding, dilation, groups, deformable_groups, im2col_step, /);
    deform_roi_pooling(data, rois, offset, spatial_scale, out_size, out_channels, no_trans, group_size,
        part_size, sample_per_part, trans_std, /);
    interpolate(input, size, scale_factor, mode, align_corners);
    modulated_deform_conv(input, offset, mask, weight, bias, stride, padding, dilation, groups,
        deformable_groups, /);
    nms; roi_align(input, roi, output_size, spatial_scale, sampling_ratio, /);
    roi_pool(input, roi, output_size, spatial_scale, /); smooth_l1_loss(input, target, beta, size_average);
maskrcnn_benchmark.layers._utils:
maskrcnn_benchmark.layers.batch_norm:
    class FrozenBatchNorm2d(n);
maskrcnn_benchmark.layers.dcn:
maskrcnn_benchmark.layers.dcn.deform_conv_func:
    class DeformConvFunction(); class ModulatedDeformConvFunction();
    deform_conv(input, offset, weight, stride, padding, dilation, groups, deformable_groups, im2col_step, /);
    modulated_deform_conv(input, offset, mask, weight, bias, stride, padding, dilation, groups,
        deformable_groups, /);
maskrcnn_benchmark.layers.dcn.deform_conv_module:
    class DeformConv(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
        deformable_groups, bias);
    class ModulatedDeformConv(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
        deformable_groups, bias);
    class ModulatedDeformConvPack(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
        deformable_groups, bias);
maskrcnn_benchmark.layers.dcn.deform_pool_func:
    class DeformRoIPoolingFunction();
    deform_roi_pooling(data, rois, offset, spatial_scale, out_size, out_channels, no_trans, group_size,
        part_size, sample_per_part, trans_std, /);
maskrcnn_benchmark.layers.dcn.deform_pool_module:
    class DeformRoIPooling(spatial_scale, out_size, out_channels, no_trans, group_size, part_size,
        sample_per_part, trans_std);
    class DeformRoIPoolingPack(spatial_scale, out_size, out_channels, no_trans, group_size, part_size,
        sample_per_part, trans_std, deform_fc_channels);
    class ModulatedDeformRoIPoolingPack(spatial_scale, out_size, out_channels, no_trans, group_size, part_size,
        sample_per_part, trans_std, deform_fc_channels);
maskrcnn_benchmark.layers.misc:
    class BatchNorm2d(num_features, eps, momentum, affine, track_running_stats, device, dtype);
    class Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
        device, dtype);
    class ConvTranspose2d(in_channels, out_channels, kernel_size, stride, padding, output_padding, groups, bias,
        dilation, padding_mode, device, dtype);
    class DFConv2d(in_channels, out_channels, with_modulated_dcn, kernel_size, stride, groups, dilation,
        deformable_groups, bias);
    interpolate(input, size, scale_factor, mode, align_corners);
maskrcnn_benchmark.layers.nms:
    nms;
maskrcnn_benchmark.layers.roi_align:
    class ROIAlign(output_size, spatial_scale, sampling_ratio);
    roi_align(input, roi, output_size, spatial_scale, sampling_ratio, /);
maskrcnn_benchmark.layers.roi_pool:
    class ROIPool(output_size, spatial_scale); roi_pool(input, roi, output_size, spatial_scale, /);
maskrcnn_benchmark.layers.sigmoid_focal_loss:
    class SigmoidFocalLoss(gamma, alpha); sigmoid_focal_loss_cpu(logits, targets, gamma, alpha);
    sigmoid_focal_loss_cuda(logits, targets, gamma, alpha, /);
maskrcnn_benchmark.layers.smooth_l1_loss:
    smooth_l1_loss(input, target, beta, size_average);
maskrcnn_benchmark.modeling:
maskrcnn_benchmark.modeling.backbone:
    fbnet;
    build_backbone(cfg);
maskrcnn_benchmark.modeling.backbone.backbone:
    build_backbone(cfg); build_resnet_backbone(cfg); build_resnet_fpn_backbone(cfg);
    build_resnet_fpn_p3p7_backbone(cfg);
maskrcnn_benchmark.modeling.backbone.fbnet:
    logger; create_builder(cfg); class FBNetTrunk(builder, arch_def, dim_in); add_conv_body(cfg, dim_in);
    class FBNetRPNHead(cfg, in_channels, builder, arch_def); add_rpn_head(cfg, in_channels, num_anchors);
    ARCH_CFG_NAME_MAPPING;
    class FBNetROIHead(cfg, in_channels, builder, arch_def, head_name, use_blocks, stride_init, last_layer_scale);
    add_roi_head(cfg, in_channels); add_roi_head_keypoints(cfg, in_channels); add_roi_head_mask(cfg, in_channels);
maskrcnn_benchmark.modeling.backbone.fbnet_builder:
    logger; PRIMITIVES; class Identity(C_in, C_out, stride); class CascadeConv3x3(C_in, C_out, stride);
    class Shift(C, kernel_size, stride, padding); class ShiftBlock5x5(C_in, C_out, expansion, stride);
    class ChannelShuffle(groups);
    class ConvBNRelu(input_depth, output_depth, kernel, stride, pad, no_bias, use_relu, bn_type, group);
    class SEModule(C); class Upsample(scale_factor, mode, align_corners);
    class IRFBlock(input_depth, output_depth, expansion, stride, bn_type, kernel, width_divisor, shuffle_type,
        pw_group, se, cdw, dw_skip_bn, dw_skip_relu);
    expand_stage_cfg(stage_cfg); expand_stages_cfg(stage_cfgs); unify_arch_def(arch_def); get_num_stages(arch_def);
    get_blocks(arch_def, stage_indices, block_indices);
    class FBNetBuilder(width_ratio, bn_type, width_divisor, dw_skip_bn, dw_skip_relu);
maskrcnn_benchmark.modeling.backbone.fbnet_modeldef:
    add_archs(archs); MODEL_ARCH; MODEL_ARCH_CHAM;
maskrcnn_benchmark.modeling.backbone.fpn:
    class FPN(in_channels_list, out_channels, conv_block, top_blocks); class LastLevelMaxPool();
    class LastLevelP6P7(in_channels, out_channels);
maskrcnn_benchmark.modeling.backbone.resnet:
    class BaseStem(cfg, norm_func);
    class Bottleneck(in_channels, bottleneck_channels, out_channels, num_groups, stride_in_1x1, stride,
        dilation, norm_func, dcn_config);
    class BottleneckWithFixedBatchNorm(in_channels, bottleneck_channels, out_channels, num_groups,
        stride_in_1x1, stride, dilation, dcn_config);
    class BottleneckWithGN(in_channels, bottleneck_channels, out_channels, num_groups, stride_in_1x1, stride,
        dilation, dcn_config);
    class ResNet(cfg); ResNet101FPNStagesTo5; ResNet101StagesTo4; ResNet101StagesTo5; ResNet152FPNStagesTo5;
    ResNet50FPNStagesTo5; ResNet50StagesTo4; ResNet50StagesTo5;
    class ResNetHead(block_module, stages, num_groups, width_per_group, stride_in_1x1, stride_init,
        res2_out_channels, dilation, dcn_config);
    StageSpec; class StemWithFixedBatchNorm(cfg); class StemWithGN(cfg);
maskrcnn_benchmark.modeling.balanced_positive_negative_sampler:
    class BalancedPositiveNegativeSampler(batch_size_per_image, positive_fraction);
maskrcnn_benchmark.modeling.box_coder:
    class BoxCoder(weights, bbox_xform_clip);
maskrcnn_benchmark.modeling.detector:
    build_detection_model(cfg);
maskrcnn_benchmark.modeling.detector.detectors:
    build_detection_model(cfg);
maskrcnn_benchmark.modeling.detector.generalized_rcnn:
    class GeneralizedRCNN(cfg);
maskrcnn_benchmark.modeling.make_layers:
    conv_with_kaiming_uniform(use_gn, use_relu); get_group_gn(dim, dim_per_gp, num_groups);
    group_norm(out_channels, affine, divisor);
    make_conv3x3(in_channels, out_channels, dilation, stride, use_gn, use_relu, kaiming_init);
    make_fc(dim_in, hidden_dim, use_gn);
maskrcnn_benchmark.modeling.matcher:
    class Matcher(high_threshold, low_threshold, allow_low_quality_matches);
maskrcnn_benchmark.modeling.poolers:
    class LevelMapper(k_min, k_max, canonical_scale, canonical_level, eps);
    class Pooler(output_size, scales, sampling_ratio); make_pooler(cfg, head_name);
maskrcnn_benchmark.modeling.registry:
    BACKBONES; ROI_BOX_FEATURE_EXTRACTORS; ROI_BOX_PREDICTOR; ROI_KEYPOINT_FEATURE_EXTRACTORS;
    ROI_KEYPOINT_PREDICTOR; ROI_MASK_FEATURE_EXTRACTORS; ROI_MASK_PREDICTOR; RPN_HEADS;
maskrcnn_benchmark.modeling.roi_heads:
maskrcnn_benchmark.modeling.roi_heads.box_head:
maskrcnn_benchmark.modeling.roi_heads.box_head.box_head:
    class ROIBoxHead(cfg, in_channels); build_roi_box_head(cfg, in_channels);
maskrcnn_benchmark.modeling.roi_heads.box_head.inference:
    class PostProcessor(score_thresh, nms, detections_per_img, box_coder, cls_agnostic_bbox_reg,
        bbox_aug_enabled);
    make_roi_box_post_processor(cfg);
maskrcnn_benchmark.modeling.roi_heads.box_head.loss:
    class FastRCNNLossComputation(proposal_matcher, fg_bg_sampler, box_coder, cls_agnostic_bbox_reg);
    make_roi_box_loss_evaluator(cfg);
maskrcnn_benchmark.modeling.roi_heads.box_head.roi_box_feature_extractors:
    class FPN2MLPFeatureExtractor(cfg, in_channels); class FPNXconv1fcFeatureExtractor(cfg, in_channels);
    class ResNet50Conv5ROIFeatureExtractor(config, in_channels);
    make_roi_box_feature_extractor(cfg, in_channels);
maskrcnn_benchmark.modeling.roi_heads.box_head.roi_box_predictors:
    class FPNPredictor(cfg, in_channels); class FastRCNNPredictor(config, in_channels);
    make_roi_box_predictor(cfg, in_channels);
maskrcnn_benchmark.modeling.roi_heads.keypoint_head:
maskrcnn_benchmark.modeling.roi_heads.keypoint_head.inference:
    class KeypointPostProcessor(keypointer); class Keypointer(padding); heatmaps_to_keypoints(maps, rois);
    make_roi_keypoint_post_processor(cfg);
maskrcnn_benchmark.modeling.roi_heads.keypoint_head.keypoint_head:
    class ROIKeypointHead(cfg, in_channels); build_roi_keypoint_head(cfg, in_channels);
maskrcnn_benchmark.modeling.roi_heads.keypoint_head.loss:
    class KeypointRCNNLossComputation(proposal_matcher, fg_bg_sampler, discretization_size);
    cat_boxlist_with_keypoints(boxlists); make_roi_keypoint_loss_evaluator(cfg);
    project_keypoints_to_heatmap(keypoints, proposals, discretization_size);
maskrcnn_benchmark.modeling.roi_heads.keypoint_head.roi_keypoint_feature_extractors:
    class KeypointRCNNFeatureExtractor(cfg, in_channels); make_roi_keypoint_feature_extractor(cfg, in_channels);
maskrcnn_benchmark.modeling.roi_heads.keypoint_head.roi_keypoint_predictors:
    class KeypointRCNNPredictor(cfg, in_channels); make_roi_keypoint_predictor(cfg, in_channels);
maskrcnn_benchmark.modeling.roi_heads.mask_head:
maskrcnn_benchmark.modeling.roi_heads.mask_head.inference:
    class MaskPostProcessor(masker); class MaskPostProcessorCOCOFormat(masker);
    class Masker(threshold, padding); expand_boxes(boxes, scale); expand_masks(mask, padding);
    make_roi_mask_post_processor(cfg); paste_mask_in_image(mask, box, im_h, im_w, thresh, padding);
maskrcnn_benchmark.modeling.roi_heads.mask_head.loss:
    class MaskRCNNLossComputation(proposal_matcher, discretization_size); make_roi_mask_loss_evaluator(cfg);
    project_masks_on_boxes(segmentation_masks, proposals, discretization_size);
maskrcnn_benchmark.modeling.roi_heads.mask_head.mask_head:
    class ROIMaskHead(cfg, in_channels); build_roi_mask_head(cfg, in_channels); keep_only_positive_boxes(boxes);
maskrcnn_benchmark.modeling.roi_heads.mask_head.roi_mask_feature_extractors:
    class MaskRCNNFPNFeatureExtractor(cfg, in_channels); make_roi_mask_feature_extractor(cfg, in_channels);
maskrcnn_benchmark.modeling.roi_heads.mask_head.roi_mask_predictors:
    class MaskRCNNC4Predictor(cfg, in_channels); class MaskRCNNConv1x1Predictor(cfg, in_channels);
    make_roi_mask_predictor(cfg, in_channels);
maskrcnn_benchmark.modeling.roi_heads.roi_heads:
    class CombinedROIHeads(cfg, heads); build_roi_heads(cfg, in_channels);
maskrcnn_benchmark.modeling.rpn:
maskrcnn_benchmark.modeling.rpn.anchor_generator:
    class AnchorGenerator(sizes, aspect_ratios, anchor_strides, straddle_thresh); class BufferList(buffers);
    generate_anchors(stride, sizes, aspect_ratios); make_anchor_generator(config);
    make_anchor_generator_retinanet(config);
maskrcnn_benchmark.modeling.rpn.inference:
    class RPNPostProcessor(pre_nms_top_n, post_nms_top_n, nms_thresh, min_size, box_coder, fpn_post_nms_top_n,
        fpn_post_nms_per_batch);
    make_rpn_postprocessor(config, rpn_box_coder, is_train);
maskrcnn_benchmark.modeling.rpn.loss:
    class RPNLossComputation(proposal_matcher, fg_bg_sampler, box_coder, generate_labels_func);
    generate_rpn_labels(matched_targets); make_rpn_loss_evaluator(cfg, box_coder);
maskrcnn_benchmark.modeling.rpn.retinanet:
maskrcnn_benchmark.modeling.rpn.retinanet.inference:
    class RetinaNetPostProcessor(pre_nms_thresh, pre_nms_top_n, nms_thresh, fpn_post_nms_top_n, min_size,
        num_classes, box_coder);
    make_retinanet_postprocessor(config, rpn_box_coder, is_train);
maskrcnn_benchmark.modeling.rpn.retinanet.loss:
    class RetinaNetLossComputation(proposal_matcher, box_coder, generate_labels_func, sigmoid_focal_loss,
        bbox_reg_beta, regress_norm);
    generate_retinanet_labels(matched_targets); make_retinanet_loss_evaluator(cfg, box_coder);
maskrcnn_benchmark.modeling.rpn.retinanet.retinanet:
    class RetinaNetHead(cfg, in_channels); class RetinaNetModule(cfg, in_channels);
    build_retinanet(cfg, in_channels);
maskrcnn_benchmark.modeling.rpn.rpn:
    class RPNHead(cfg, in_channels, num_anchors); class RPNHeadConvRegressor(cfg, in_channels, num_anchors);
    class RPNHeadFeatureSingleConv(cfg, in_channels); class RPNModule(cfg, in_channels);
    build_rpn(cfg, in_channels);
maskrcnn_benchmark.modeling.rpn.utils:
    concat_box_prediction_layers(box_cls, box_regression); permute_and_flatten(layer, N, A, C, H, W);
maskrcnn_benchmark.modeling.utils:
    cat(tensors, dim);
maskrcnn_benchmark.solver:
    class WarmupMultiStepLR(optimizer, milestones, gamma, warmup_factor, warmup_iters, warmup_method,
        last_epoch);
    make_lr_scheduler(cfg, optimizer); make_optimizer(cfg, model);
maskrcnn_benchmark.solver.build:
    make_lr_scheduler(cfg, optimizer); make_optimizer(cfg, model);
maskrcnn_benchmark.solver.lr_scheduler:
    class WarmupMultiStepLR(optimizer, milestones, gamma, warmup_factor, warmup_iters, warmup_method,
        last_epoch);
maskrcnn_benchmark.structures:
maskrcnn_benchmark.structures.bounding_box:
    class BoxList(bbox, image_size, mode); FLIP_LEFT_RIGHT; FLIP_TOP_BOTTOM;
maskrcnn_benchmark.structures.boxlist_ops:
    boxlist_iou(boxlist1, boxlist2); boxlist_nms(boxlist, nms_thresh, max_proposals, score_field);
    cat_boxlist(bboxes); remove_small_boxes(boxlist, min_size);
maskrcnn_benchmark.structures.image_list:
    class ImageList(tensors, image_sizes); to_image_list(tensors, size_divisible);
maskrcnn_benchmark.structures.keypoint:
    FLIP_LEFT_RIGHT; FLIP_TOP_BOTTOM; class Keypoints(keypoints, size, mode);
    class PersonKeypoints(keypoints, size, mode); keypoints_to_heat_map(keypoints, rois, heatmap_size);
    kp_connections(keypoints);
maskrcnn_benchmark.structures.segmentation_mask:
    class BinaryMaskList(masks, size); FLIP_LEFT_RIGHT; FLIP_TOP_BOTTOM; class PolygonInstance(polygons, size);
    class PolygonList(polygons, size); class SegmentationMask(instances, size, mode);
maskrcnn_benchmark.utils:
maskrcnn_benchmark.utils.c2_model_loading:
    C2_FORMAT_LOADER; load_c2_format(cfg, f); load_resnet_c2_format(cfg, f);
maskrcnn_benchmark.utils.checkpoint:
    class Checkpointer(model, optimizer, scheduler, save_dir, save_to_disk, logger);
    class DetectronCheckpointer(cfg, model, optimizer, scheduler, save_dir, save_to_disk, logger);
maskrcnn_benchmark.utils.collect_env:
    collect_env_info(); get_pil_version();
maskrcnn_benchmark.utils.comm:
    all_gather(data); get_rank(); get_world_size(); is_main_process(); reduce_dict(input_dict, average);
    synchronize();
maskrcnn_benchmark.utils.cv2_util:
    findContours();
maskrcnn_benchmark.utils.env:
    setup_custom_environment(custom_module_path); setup_environment();
maskrcnn_benchmark.utils.imports:
    import_file(module_name, file_path, make_importable);
maskrcnn_benchmark.utils.logger:
    setup_logger(name, save_dir, distributed_rank, filename);
maskrcnn_benchmark.utils.metric_logger:
    class MetricLogger(delimiter); class SmoothedValue(window_size);
maskrcnn_benchmark.utils.miscellaneous:
    mkdir(path); save_config(cfg, path); save_labels(dataset_list, output_dir);
maskrcnn_benchmark.utils.model_serialization:
    align_and_update_state_dicts(model_state_dict, loaded_state_dict);
    load_state_dict(model, loaded_state_dict); strip_prefix_if_present(state_dict, prefix);
maskrcnn_benchmark.utils.model_zoo:
    cache_url(url, model_dir, progress);
maskrcnn_benchmark.utils.registry:
    class Registry();
maskrcnn_benchmark.utils.timer:
    class Timer(); get_time_str(time_diff);
"""


def _parse(text: str):
    table: Dict[str, Dict[str, Optional[List[str]]]] = {}
    positional_only = set()
    parts = re.split(r"^(\S+):$", text, flags=re.M)
    for module, body in zip(parts[1::2], parts[2::2]):
        table[module] = {}
        for entry in filter(None, (e.strip() for e in " ".join(body.split()).split(";"))):
            kind, name, params = re.fullmatch(r"(class )?(\w+)(?:\((.*)\))?", entry).groups()
            if params is None:
                table[module][name] = None
                continue
            params = [p.strip() for p in params.split(",") if p.strip()]
            if "/" in params:
                params.remove("/")
                positional_only.add((module, name))
            table[module][name] = (["self"] if kind else []) + params
    return table, positional_only


ORIGINAL, POSITIONAL_ONLY = _parse(ORIGINAL_TEXT)  # module -> {name: [positional parameters] or None}


def _problems(obj, params: List[str], names_matter: bool) -> List[str]:
    """Why `obj` cannot be called as the original's callable with these positional parameters."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return [] if not params else [f"no signature to accept {params}"]
    ps = list(sig.parameters.values())
    slots = [p for p in ps if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    takes_more = any(p.kind == p.VAR_POSITIONAL for p in ps)
    problems = []
    for i, name in enumerate(params):
        if i >= len(slots):
            if not takes_more:
                problems.append(f"no positional parameter #{i} ({name})")
        elif names_matter and slots[i].name != name:
            problems.append(f"parameter #{i} is {slots[i].name!r}, the original's {name!r}")
    problems += [f"requires {p.name!r}" for p in slots[len(params) :] if p.default is p.empty]
    problems += [f"requires keyword {p.name!r}" for p in ps if p.kind == p.KEYWORD_ONLY and p.default is p.empty]
    return problems


def _check(module_name: str, name: str, params: Optional[List[str]]) -> List[str]:
    module = importlib.import_module(module_name)
    if not hasattr(module, name):
        return [f"{module_name}.{name} is missing"]
    obj = getattr(module, name)
    if params is None:
        return []
    if params[:1] == ["self"]:
        if not inspect.isclass(obj):
            return [f"{module_name}.{name} is not a class"]
        target, params = getattr(obj.__init__, "from_cfg", obj), params[1:]
    else:
        if not callable(obj):
            return [f"{module_name}.{name} is not callable"]
        target = obj
    names_matter = (module_name, name) not in POSITIONAL_ONLY
    return [f"{module_name}.{name}: {p}" for p in _problems(target, params, names_matter)]


@pytest.mark.parametrize("module_name", sorted(ORIGINAL))
def test_original_names_at_their_paths(module_name):
    problems = []
    for name, params in ORIGINAL[module_name].items():
        problems += _check(module_name, name, params)
    assert not problems, "\n".join(problems)


def test_the_walk_itself_catches_incompatibilities():
    def ours(a, b, c=1, *, d):
        pass

    assert _problems(ours, ["a", "x"], True) == ["parameter #1 is 'b', the original's 'x'", "requires keyword 'd'"]
    assert _problems(lambda a: a, ["a", "b"], True) == ["no positional parameter #1 (b)"]
    assert _problems(lambda a, b: a, ["a"], True) == ["requires 'b'"]
    assert _check("maskrcnn_benchmark.utils.timer", "no_such_name", None) == [
        "maskrcnn_benchmark.utils.timer.no_such_name is missing"
    ]


# --- behaviour of the names added for the original's callers ----------------------------------

CPU_CONFIGS = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "cpu")


def _cfg(name: str):
    from maskrcnn_benchmark.config import cfg

    c = cfg.clone()
    c.merge_from_file(os.path.join(CPU_CONFIGS, name))
    return c


def _keys(module: torch.nn.Module):
    return [(k, tuple(v.shape)) for k, v in module.state_dict().items()]


def test_model_classes_take_the_originals_cfg_arguments():
    from maskrcnn_benchmark.modeling.detector import build_detection_model
    from maskrcnn_benchmark.modeling.detector.generalized_rcnn import GeneralizedRCNN
    from maskrcnn_benchmark.modeling.roi_heads.box_head.roi_box_predictors import FPNPredictor
    from maskrcnn_benchmark.modeling.roi_heads.mask_head.roi_mask_feature_extractors import (
        MaskRCNNFPNFeatureExtractor,
    )
    from maskrcnn_benchmark.modeling.rpn.rpn import RPNHead

    cfg = _cfg("e2e_mask_rcnn_R_18_FPN_cpu.yaml")
    assert _keys(GeneralizedRCNN(cfg)) == _keys(build_detection_model(cfg))
    predictor = FPNPredictor(cfg, in_channels=24)  # by keyword too
    assert (predictor.cls_score.in_features, predictor.cls_score.out_features) == (
        24,
        cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES,
    )
    assert RPNHead(cfg, 8, 3).cls_logits.out_channels == 3

    class WiderMaskExtractor(MaskRCNNFPNFeatureExtractor):  # a subclass written for the original
        def __init__(self, cfg, in_channels):
            super().__init__(cfg, in_channels)
            self.extra = torch.nn.Identity()

    extractor = WiderMaskExtractor(cfg, 8)
    features = [torch.randn(1, 8, 64 // s, 64 // s) for s in (4, 8, 16, 32)]
    proposals = [BoxList(torch.tensor([[4.0, 4.0, 40.0, 30.0]]), (64, 64))]
    resolution = cfg.MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION
    expected = (1, cfg.MODEL.ROI_MASK_HEAD.CONV_LAYERS[-1], resolution, resolution)
    assert extractor(features, proposals).shape == expected

    c4 = GeneralizedRCNN(_cfg("e2e_mask_rcnn_R_18_C4_cpu.yaml"))  # CombinedROIHeads(cfg, heads) shares the res5 head
    assert c4.roi_heads.mask.feature_extractor is c4.roi_heads.box.feature_extractor


def test_resnet_parts_in_the_originals_forms():
    from torch import nn

    from maskrcnn_benchmark.layers import DFConv2d, FrozenBatchNorm2d
    from maskrcnn_benchmark.modeling.backbone import resnet
    from maskrcnn_benchmark.modeling.backbone.backbone import build_resnet

    cfg = _cfg("e2e_mask_rcnn_R_18_FPN_cpu.yaml")
    assert _keys(resnet.ResNet(cfg)) == _keys(build_resnet(cfg))
    assert resnet.ResNet50StagesTo4 == tuple(resnet.StageSpec(i, n, i == 3) for i, n in ((1, 3), (2, 4), (3, 6)))
    assert [s.block_count for s in resnet.ResNet152FPNStagesTo5] == [3, 8, 36, 3]

    dcn = {"stage_with_dcn": True, "with_modulated_dcn": True, "deformable_groups": 1}
    stage5 = (resnet.StageSpec(4, 2, False),)
    head = resnet.ResNetHead("BottleneckWithFixedBatchNorm", stage5, 1, 8, True, None, 16, 1, dcn)
    assert all(isinstance(b.conv2, DFConv2d) and b.conv2.with_modulated_dcn for b in head.layer4)
    assert isinstance(head.layer4[0].bn1, FrozenBatchNorm2d)
    assert head(torch.randn(1, 64, 8, 8)).shape == (1, 128, 4, 4)
    gn_head = resnet.ResNetHead("BottleneckWithGN", stage5, res2_out_channels=16, width_per_group=8)
    assert isinstance(gn_head.layer4[0].bn1, nn.GroupNorm) and not isinstance(gn_head.layer4[0].conv2, DFConv2d)
    with pytest.raises(KeyError, match="NoSuchBlock"):
        resnet.ResNetHead("NoSuchBlock", stage5)

    block = resnet.Bottleneck(16, 8, 32, 1, True, 2, 1, nn.BatchNorm2d, {"stage_with_dcn": False})
    assert isinstance(block.bn1, nn.BatchNorm2d) and not isinstance(block.conv2, DFConv2d)
    assert block(torch.randn(1, 16, 8, 8)).shape == (1, 32, 4, 4)
    stem = resnet.BaseStem(cfg, norm_func=FrozenBatchNorm2d)
    assert stem(torch.rand(1, 3, 32, 32)).shape == (1, cfg.MODEL.RESNETS.STEM_OUT_CHANNELS, 8, 8)


def _c_round(v: float) -> float:
    return math.copysign(math.floor(abs(v) + 0.5), v)


def _reference_deform_pool(data, rois, offset, scale, size, channels, no_trans, group, part, samples, std):
    """The original kernel's loops, one bin and one sample point at a time."""
    out = torch.zeros(len(rois), channels, size, size, dtype=torch.float64)
    height, width = data.shape[2:]
    per_class = channels if no_trans else channels // (offset.shape[1] // 2)
    for n, (b, x1, y1, x2, y2) in enumerate(rois.tolist()):
        sw, sh = _c_round(x1) * scale - 0.5, _c_round(y1) * scale - 0.5
        rw = max((_c_round(x2) + 1) * scale - 0.5 - sw, 0.1)
        rh = max((_c_round(y2) + 1) * scale - 0.5 - sh, 0.1)
        bw, bh = rw / size, rh / size
        for c, ph, pw in itertools.product(range(channels), range(size), range(size)):
            k, parth, partw = c // per_class, math.floor(ph / size * part), math.floor(pw / size * part)
            tx = 0.0 if no_trans else offset[n, 2 * k, parth, partw].item() * std
            ty = 0.0 if no_trans else offset[n, 2 * k + 1, parth, partw].item() * std
            gw, gh = min(math.floor(pw * group / size), group - 1), min(math.floor(ph * group / size), group - 1)
            plane = data[int(b), (c * group + gh) * group + gw]
            total, count = 0.0, 0
            for ih, iw in itertools.product(range(samples), range(samples)):
                w = pw * bw + sw + tx * rw + iw * bw / samples
                h = ph * bh + sh + ty * rh + ih * bh / samples
                if w < -0.5 or w > width - 0.5 or h < -0.5 or h > height - 0.5:
                    continue
                w, h = min(max(w, 0.0), width - 1.0), min(max(h, 0.0), height - 1.0)
                xa, xb, ya, yb = math.floor(w), math.ceil(w), math.floor(h), math.ceil(h)
                dx, dy = w - xa, h - ya
                total += (1 - dx) * (1 - dy) * plane[ya, xa] + (1 - dx) * dy * plane[yb, xa]
                total += dx * (1 - dy) * plane[ya, xb] + dx * dy * plane[yb, xb]
                count += 1
            out[n, c, ph, pw] = total / count if count else 0.0
    return out


def test_deform_roi_pooling_follows_the_originals_kernel():
    from maskrcnn_benchmark.layers import deform_roi_pooling

    data = torch.randn(2, 16, 9, 11, dtype=torch.float64)
    # half-pixel corners (rounded away from zero), a RoI past the border, one entirely outside
    rois = torch.tensor(
        [[0, 2.5, 1.0, 13.0, 15.5], [1, -3.0, 4.0, 30.0, 9.0], [0, 40.0, 40.0, 60.0, 50.0]], dtype=torch.float64
    )
    offset = torch.randn(3, 4, 2, 2, dtype=torch.float64)  # 2 offset classes, part_size 2
    for no_trans in (True, False):
        args = (0.5, 3, 4, no_trans, 2, 2, 2, 0.3)
        expected = _reference_deform_pool(data, rois, offset, *args)
        torch.testing.assert_close(deform_roi_pooling(data, rois, offset, *args), expected)
    assert deform_roi_pooling(data, rois, offset, *args)[2].abs().sum() == 0

    # gradients of the data and the offsets (a RoI inside the map: no clamped sample)
    small_data = torch.randn(1, 4, 6, 7, dtype=torch.float64, requires_grad=True)
    inner = torch.tensor([[0, 3.0, 2.0, 9.0, 8.0]], dtype=torch.float64)
    small = (0.2 * torch.randn(1, 2, 2, 2, dtype=torch.float64)).requires_grad_(True)
    small_args = (0.5, 2, 1, False, 2, 2, 2, 0.3)
    assert torch.autograd.gradcheck(lambda d, o: deform_roi_pooling(d, inner, o, *small_args), (small_data, small))
    with pytest.raises(ValueError, match="out_channels \\* group_size"):
        deform_roi_pooling(data, rois, offset, 0.5, 3, 5, True)


def test_deform_roi_pooling_packs_start_as_plain_pooling():
    from maskrcnn_benchmark.layers import DeformRoIPooling, DeformRoIPoolingPack, ModulatedDeformRoIPoolingPack

    data = torch.randn(1, 4, 8, 8)
    rois = torch.tensor([[0, 1.0, 1.0, 12.0, 10.0], [0, 4.0, 0.0, 15.0, 15.0]])
    plain = DeformRoIPooling(0.5, 3, 4, True)(data, rois, None)
    pack = DeformRoIPoolingPack(0.5, 3, 4, False, trans_std=0.1, deform_fc_channels=8)
    assert [type(m).__name__ for m in pack.offset_fc] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    torch.testing.assert_close(pack(data, rois), plain)  # zero-initialised offsets
    modulated = ModulatedDeformRoIPoolingPack(0.5, 3, 4, False, trans_std=0.1, deform_fc_channels=8)
    torch.testing.assert_close(modulated(data, rois), 0.5 * plain)  # sigmoid(0) mask
    with torch.no_grad():
        pack.offset_fc[4].bias.fill_(1.0)
    assert not torch.allclose(pack(data, rois), plain)
    with pytest.raises(ValueError, match="out_channels=4"):
        pack(torch.randn(1, 5, 8, 8), rois)


def test_rpn_and_retinanet_losses_label_anchors_through_the_originals_hook():
    from maskrcnn_benchmark.layers import SigmoidFocalLoss
    from maskrcnn_benchmark.modeling.box_coder import BoxCoder
    from maskrcnn_benchmark.modeling.matcher import Matcher
    from maskrcnn_benchmark.modeling.rpn.loss import RPNLossComputation, generate_rpn_labels
    from maskrcnn_benchmark.modeling.rpn.retinanet.loss import RetinaNetLossComputation, generate_retinanet_labels

    # IoU with the first box: 1, 0.25 (below), -, 0.6 (between the thresholds)
    anchors = BoxList(torch.tensor([[0, 0, 9, 9], [0, 0, 4, 4], [20, 20, 29, 29], [0, 0, 9, 5.0]]), (40, 40))
    anchors.add_field("visibility", torch.ones(4, dtype=torch.bool))
    target = BoxList(torch.tensor([[0, 0, 9, 9], [20, 20, 29, 29.0]]), (40, 40))
    target.add_field("labels", torch.tensor([3, 5]))
    matcher = Matcher(0.7, 0.3, allow_low_quality_matches=False)
    seen = []

    def labels_func(matched_targets):
        seen.append(matched_targets.get_field("matched_idxs").tolist())
        return generate_rpn_labels(matched_targets)

    rpn = RPNLossComputation(matcher, None, BoxCoder((1.0, 1.0, 1.0, 1.0)), labels_func)
    assert rpn.prepare_targets([anchors], [target])[0][0].tolist() == [1, 0, 1, -1]
    assert seen == [[0, Matcher.BELOW_LOW_THRESHOLD, 1, Matcher.BETWEEN_THRESHOLDS]]
    retina = RetinaNetLossComputation(
        matcher, BoxCoder((10.0, 10.0, 5.0, 5.0)), generate_retinanet_labels, SigmoidFocalLoss(2.0, 0.25)
    )
    assert retina.prepare_targets([anchors], [target])[0][0].tolist() == [3, 0, 5, -1]


def test_retinanet_post_processor_takes_and_checks_num_classes():
    from maskrcnn_benchmark.modeling.box_coder import BoxCoder
    from maskrcnn_benchmark.modeling.rpn.retinanet.inference import (
        RetinaNetPostProcessor,
        make_retinanet_postprocessor,
    )

    post = RetinaNetPostProcessor(0.05, 10, 0.5, 10, 0, 3, BoxCoder((10.0, 10.0, 5.0, 5.0)))  # the original's order
    anchors = [[BoxList(torch.tensor([[0.0, 0.0, 9.0, 9.0]]).repeat(4, 1), (20, 20))]]  # 2x2 map, 1 anchor
    detections = post(anchors, [torch.zeros(1, 2, 2, 2)], [torch.zeros(1, 4, 2, 2)])[0]
    assert sorted(detections.get_field("labels").tolist()) == [1, 2]  # identical boxes: one per class
    with pytest.raises(ValueError, match="num_classes=3"):
        post(anchors, [torch.zeros(1, 3, 2, 2)], [torch.zeros(1, 4, 2, 2)])
    cfg = _cfg("retinanet_R_18_FPN_cpu.yaml")
    assert make_retinanet_postprocessor(cfg, None, False).num_classes == cfg.MODEL.RETINANET.NUM_CLASSES


def test_cat_boxlist_with_keypoints_concatenates_the_keypoint_tensors():
    from maskrcnn_benchmark.modeling.roi_heads.keypoint_head.loss import cat_boxlist_with_keypoints
    from maskrcnn_benchmark.structures.keypoint import PersonKeypoints

    parts = []
    for n in (1, 2):
        b = BoxList(torch.rand(n, 4) * 5 + torch.tensor([0, 0, 5, 5]), (10, 10))
        b.add_field("labels", torch.arange(n) + 1)
        b.add_field("keypoints", PersonKeypoints(torch.rand(n, 17, 3), (10, 10)))
        parts.append(b)
    out = cat_boxlist_with_keypoints(parts)
    kp = out.get_field("keypoints")
    assert isinstance(kp, torch.Tensor) and kp.shape == (3, 17, 3)
    torch.testing.assert_close(kp, torch.cat([p.get_field("keypoints").keypoints for p in parts]))
    assert out.get_field("labels").tolist() == [1, 1, 2]
    with pytest.raises(ValueError, match="keypoints"):
        cat_boxlist_with_keypoints([BoxList(torch.zeros(1, 4), (10, 10))])


def test_c2_format_loaders_by_conv_body(monkeypatch):
    from maskrcnn_benchmark.utils import c2_model_loading as c2

    assert c2.C2_FORMAT_LOADER["R-101-FPN-RETINANET"] is c2.load_resnet_c2_format
    monkeypatch.setitem(c2.C2_FORMAT_LOADER, "MY-BODY", lambda cfg, f: {"model": {"from": f}})
    cfg = _cfg("e2e_mask_rcnn_R_18_FPN_cpu.yaml")
    cfg.MODEL.BACKBONE.CONV_BODY = "MY-BODY"
    assert c2.load_c2_format(cfg, "weights.pkl") == {"model": {"from": "weights.pkl"}}


def test_box_augmentation_functions_read_the_global_config():
    from maskrcnn_benchmark.config import cfg as global_cfg
    from maskrcnn_benchmark.engine.bbox_aug import im_detect_bbox, im_detect_bbox_hflip

    seen = []

    def model(images):
        seen.append(tuple(images.tensors.shape[2:]))
        h, w = images.image_sizes[0]
        box = BoxList(torch.tensor([[1.0, 2.0, 5.0, 6.0]]), (w, h))
        box.add_field("scores", torch.ones(1))
        return [box]

    image = Image.fromarray(np.zeros((50, 100, 3), dtype=np.uint8))
    im_detect_bbox(model, [image], 100, 1000, "cpu")
    flipped = im_detect_bbox_hflip(model, [image], 100, 1000, "cpu")[0]
    divisor = global_cfg.DATALOADER.SIZE_DIVISIBILITY or 1
    assert seen[0] == (math.ceil(100 / divisor) * divisor, math.ceil(200 / divisor) * divisor)
    assert flipped.bbox.tolist() == [[194.0, 2.0, 198.0, 6.0]]  # x -> 200 - x - 1


def test_layer_and_evaluation_aliases():
    from maskrcnn_benchmark.data.datasets.evaluation import coco as coco_evaluation
    from maskrcnn_benchmark.data.datasets.evaluation.coco import abs_to_coco, coco_eval, coco_eval_wrapper
    from maskrcnn_benchmark.layers import misc
    from maskrcnn_benchmark.layers.dcn import deform_conv_func
    from maskrcnn_benchmark.layers.sigmoid_focal_loss import sigmoid_focal_loss_cpu, sigmoid_focal_loss_cuda

    # maskrcnn_benchmark.layers.deform_conv is also a function of the package
    deform_conv = importlib.import_module("maskrcnn_benchmark.layers.deform_conv")
    assert misc.DFConv2d is deform_conv.DFConv2d
    assert not hasattr(misc, "NoSuchLayer")
    x, w, off = torch.randn(2, 4, 6, 6), torch.randn(3, 4, 3, 3), torch.randn(2, 18, 4, 4)
    # the original's positional call, im2col_step last
    out = deform_conv_func.DeformConvFunction.apply(x, off, w, 1, 0, 1, 1, 1, 64)
    torch.testing.assert_close(out, deform_conv.deform_conv(x, off, w))

    logits, targets = torch.randn(5, 3), torch.tensor([0, 1, 3, -1, 2])
    p, t, cls = logits.sigmoid(), targets[:, None], torch.arange(1, 4)[None]
    positive, negative = (t == cls).float(), ((t != cls) & (t >= 0)).float()
    expected = -positive * (1 - p) ** 2 * p.log() * 0.25 - negative * p**2 * (1 - p).log() * 0.75
    torch.testing.assert_close(sigmoid_focal_loss_cpu(logits, targets, 2.0, 0.25), expected)
    assert sigmoid_focal_loss_cuda is sigmoid_focal_loss_cpu

    assert coco_evaluation.do_orig_coco_evaluation is coco_eval.do_coco_evaluation
    assert coco_evaluation.do_wrapped_coco_evaluation is coco_eval_wrapper.do_coco_evaluation
    masks = torch.zeros(2, 5, 6, dtype=torch.uint8)
    masks[0, 1:3, 2:5] = 1
    rles = abs_to_coco.masks_to_rles(masks_tensor=masks)
    assert [r["size"] for r in rles] == [[5, 6], [5, 6]] and rles[0]["counts"] != rles[1]["counts"]
