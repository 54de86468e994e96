/**
 * The config vocabulary of pretrained networks (`pretrained.input` presets), shared by the config schema
 * (pipeline/config.ts) and model-import/preprocess.ts, which defines what each preset means.
 */

/** `pretrained.input` presets. */
export const INPUT_PRESET_NAMES = ['imagenet', 'caffe'] as const;
export type InputPresetName = (typeof INPUT_PRESET_NAMES)[number];
