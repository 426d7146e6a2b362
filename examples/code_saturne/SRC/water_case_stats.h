/* Counters that cs_user_physical_properties.c keeps and cs_user_extra_operations.c reports. */
#ifndef WATER_CASE_STATS_H
#define WATER_CASE_STATS_H

extern double water_case_property_seconds;   /* wall time spent in cs_user_physical_properties */
extern long water_case_clipped_cells;        /* cell evaluations moved onto the valid range, all steps */
extern long water_case_property_calls;       /* calls of cs_user_physical_properties */

#endif
