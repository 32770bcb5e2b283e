import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Custom search attributes that make runs findable in the Temporal UI (registered by `mella dev up` / `mella setup`). */
export const RUN_NAME = defineSearchAttributeKey('MellaRunName', SearchAttributeType.KEYWORD);
export const RUN_KIND = defineSearchAttributeKey('MellaRunKind', SearchAttributeType.KEYWORD);
export const LANGUAGE = defineSearchAttributeKey('MellaLanguage', SearchAttributeType.KEYWORD);
export const STAGE = defineSearchAttributeKey('MellaStage', SearchAttributeType.KEYWORD);

export const ALL_SEARCH_ATTRIBUTES = [RUN_NAME, RUN_KIND, LANGUAGE, STAGE] as const;
