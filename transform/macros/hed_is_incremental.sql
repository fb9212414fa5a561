{#- is_incremental(), except where there is no warehouse to ask: is_incremental() looks the
    model's table up in the warehouse, so `dbt compile` for a destination this machine
    cannot reach (the tests compile for Snowflake with a dummy profile) fails on it. With
    --vars '{hed_offline_compile: full}' or '{hed_offline_compile: incremental}' it answers
    without a connection, so both branches of every model can be compiled offline. -#}
{% macro hed_is_incremental() %}
    {%- set offline = var('hed_offline_compile', none) -%}
    {%- if offline is none -%}
        {{ return(is_incremental()) }}
    {%- elif offline in ('full', 'incremental') -%}
        {{ return(offline == 'incremental') }}
    {%- else -%}
        {{ exceptions.raise_compiler_error(
            "hed_offline_compile must be 'full' or 'incremental', not '" ~ offline ~ "'"
        ) }}
    {%- endif -%}
{% endmacro %}
